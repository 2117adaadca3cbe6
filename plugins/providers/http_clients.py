"""HTTP clients shared by the providers of many sub-agents.

A sub-agent's provider used to make its own ``httpx.AsyncClient``: a new
client, a new connection (TCP, maybe TLS) and a close per attempt. A host
that runs many attempts (the ``local`` executor) owns one
:class:`HttpClientPool` instead and hands it to the providers it creates
(:attr:`swarmd.plugins.model.ModelProvider.http_clients`); a provider then
*leases* a client for its life and gives it back on ``aclose``, and the next
attempt to the same endpoint reuses the client and its open connections.

Clients are told apart by the event loop they run on and by what the caller
says makes them different (base URL, credentials, timeout). One client
serves at most :attr:`HttpClientPool.per_client` providers at a time: an
httpx pool scans its connections on every request, so one client for a
thousand concurrent sub-agents would cost more than it saves. Idle clients
beyond :attr:`HttpClientPool.keep_idle` per kind are closed when given back;
:meth:`HttpClientPool.aclose` closes everything (the host calls it when it
closes). After that, :meth:`HttpClientPool.lease` returns ``None`` and a
provider falls back to a client of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpClientPool"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Shared:
    client: httpx.AsyncClient
    loop: asyncio.AbstractEventLoop
    kind: Hashable
    leases: int = 0


@dataclass
class _Kind:
    clients: list[_Shared] = field(default_factory=list)


class HttpClientPool:
    """Leases ``httpx.AsyncClient`` objects to providers (see the module docstring)."""

    def __init__(self, *, per_client: int = 8, keep_idle: int = 4) -> None:
        if per_client < 1 or keep_idle < 0:
            raise ValueError("per_client must be at least 1 and keep_idle not negative")
        self.per_client = per_client
        self.keep_idle = keep_idle
        self._kinds: dict[tuple[asyncio.AbstractEventLoop, Hashable], _Kind] = {}
        self._leased: dict[int, _Shared] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return sum(len(kind.clients) for kind in self._kinds.values())

    def lease(self, kind: Hashable, factory: Callable[[], httpx.AsyncClient]) -> httpx.AsyncClient | None:
        """A client of ``kind`` on the running loop (made by ``factory`` when
        none has room); ``None`` once the pool is closed. Give it back with
        :meth:`release`."""
        if self._closed:
            return None
        loop = asyncio.get_running_loop()
        entry = self._kinds.setdefault((loop, kind), _Kind())
        best: _Shared | None = None
        for shared in entry.clients:
            if shared.client.is_closed or shared.leases >= self.per_client:
                continue
            # The busiest client with room: idle ones stay idle and can be let go.
            if best is None or shared.leases > best.leases:
                best = shared
        if best is None:
            best = _Shared(factory(), loop, kind)
            entry.clients.append(best)
        best.leases += 1
        self._leased[id(best.client)] = best
        return best.client

    async def release(self, client: httpx.AsyncClient) -> None:
        """Give back a leased client; closes it when too many of its kind are idle."""
        shared = self._leased.get(id(client))
        if shared is None or shared.client is not client:
            return
        shared.leases -= 1
        if shared.leases > 0:
            return
        del self._leased[id(client)]
        entry = self._kinds.get((shared.loop, shared.kind))
        if entry is None:
            return
        idle = [s for s in entry.clients if s.leases == 0]
        if len(idle) <= self.keep_idle and not client.is_closed:
            return
        entry.clients.remove(shared)
        if not entry.clients:
            del self._kinds[(shared.loop, shared.kind)]
        await client.aclose()

    async def aclose(self) -> None:
        """Close every client made on the running loop; later leases get ``None``.

        Clients made on another loop are forgotten (their loop, and with it
        their connections, cannot be used from here)."""
        self._closed = True
        loop = asyncio.get_running_loop()
        kinds, self._kinds = self._kinds, {}
        self._leased.clear()
        for (owner, _kind), entry in kinds.items():
            for shared in entry.clients:
                if owner is not loop or owner.is_closed():
                    continue
                try:
                    await shared.client.aclose()
                except Exception:
                    log.exception("closing a shared HTTP client failed")
