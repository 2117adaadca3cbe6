"""gRPC channels from a sub-agent runtime to its peers, one per address.

With a ``channel_factory`` (the executor service passes its host's, which
adds tracing interceptors and credentials and closes the channels when the
host stops) the pool only caches; otherwise it makes plain channels, with
the given client ``interceptors`` (a pod's bearer token), and closes them
itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc

__all__ = ["ChannelPool"]


class ChannelPool:
    def __init__(
        self,
        factory: Callable[[str], grpc.aio.Channel] | None = None,
        *,
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    ) -> None:
        self._factory = factory
        self._interceptors = list(interceptors)
        self._channels: dict[str, grpc.aio.Channel] = {}

    def get(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            channel = (
                self._factory(address)
                if self._factory
                else grpc.aio.insecure_channel(address, interceptors=self._interceptors or None)
            )
            self._channels[address] = channel
        return channel

    async def aclose(self) -> None:
        channels, self._channels = self._channels, {}
        if self._factory is None:
            for channel in channels.values():
                await channel.close()
