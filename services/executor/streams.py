"""Running attempts, decoupled from the streams that watch them.

The executor service runs each attempt as a task of its own that reads the
plugin's stream into an :class:`AttemptRecord`: every message gets the
attempt's next sequence number and is kept (the newest ``buffer_bytes`` of
events, and always the result). Subscribers (the ``ExecuteSubTask`` call
that started the attempt, ``AttachSubTask`` calls after a break) read from
the record, each from its own position, with a heartbeat whenever nothing
was sent to them for their interval. So a broken stream loses nothing: the
attempt goes on, and a caller that reattaches gets what it missed.

A new attempt of a subtask whose older attempt still runs (unasked to
cancel) is not started: its caller follows the running one.

An attempt nobody watches keeps running for its reattach window and is then
cancelled (closing the plugin's stream stops the sub-agent; its worktree is
kept); with a window of 0 it is cancelled as soon as its stream ends, which
is the plain "cancelling the RPC cancels the sub-agent" contract. A finished
attempt is kept for the window, so a caller that lost the result on the way
can still collect it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator

import grpc

from swarmd.plugins import Executor
from swarmd.plugins.executor import unfinished_result
from swarmd.services.auth.outgoing import attempt_credentials
from swarmd.services.errors import AlreadyExists, SwarmdError
from swarmd.services.heartbeats import heartbeat
from swarmd.v1 import common_pb2, executor_pb2

__all__ = ["AttemptRecord", "AttemptStreams"]

log = logging.getLogger(__name__)

#: Stopping an attempt: cancellations sent, and seconds waited after each.
STOP_TRIES = 3
STOP_WAIT_SECS = 2.0
#: How long a plugin's stream is read on after its result, to see that it ends.
RESULT_TAIL_SECS = 1.0
#: Events kept per attempt for callers that reattach (the result is always kept).
DEFAULT_BUFFER_BYTES = 4 * 1024 * 1024

Key = tuple[str, str]

_TRANSIENT_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)


def plugin_label(executor: Executor, distribution: str = "") -> str:
    """How failures name the executor plugin: its name and where it comes from."""
    name = getattr(executor, "name", "") or type(executor).__qualname__
    origin = f"distribution {distribution}" if distribution else f"module {type(executor).__module__}"
    return f"executor plugin {name!r} ({origin})"


def _failure(
    request: executor_pb2.ExecuteSubTaskRequest, error: str, kind: common_pb2.FailureKind
) -> executor_pb2.ExecuteSubTaskResponse:
    return unfinished_result(request, error, kind=kind)


async def _after_result(stream: AsyncIterator[executor_pb2.ExecuteSubTaskResponse]) -> str:
    """What a plugin's stream yields after its result ("" for nothing: it ended).

    The stream is read on for up to :data:`RESULT_TAIL_SECS`; a plugin that
    neither yields nor ends by then is taken at its result (and closed).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RESULT_TAIL_SECS
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                extra = await anext(stream)
        except (StopAsyncIteration, TimeoutError):
            return ""
        except Exception as exc:  # raised while finishing: the result stands
            log.warning("an executor stream raised after its result: %s: %s", type(exc).__name__, exc)
            return ""
        if not isinstance(extra, executor_pb2.ExecuteSubTaskResponse) or extra.HasField("heartbeat"):
            continue
        if extra.HasField("result"):
            return "yielded a second result (a stream ends after its one result)"
        return "yielded an event after its result (a stream ends after its one result)"


def _malformed(message: object) -> str:
    """What is wrong with one message of a plugin's stream; ``""`` when nothing."""
    if not isinstance(message, executor_pb2.ExecuteSubTaskResponse):
        return f"yielded a {type(message).__name__}, not an ExecuteSubTaskResponse"
    if message.WhichOneof("payload") is None:
        return "yielded an ExecuteSubTaskResponse with no event, result or heartbeat"
    return ""


class AttemptRecord:
    """One attempt's numbered messages and who watches them."""

    def __init__(
        self,
        request: executor_pb2.ExecuteSubTaskRequest,
        executor: Executor,
        *,
        window_secs: float,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        plugin: str = "",
    ) -> None:
        self.request = request
        self.executor = executor
        #: Who runs it, as failures name it: "executor plugin 'x' (distribution ...)".
        self.plugin = plugin or plugin_label(executor)
        self.key: Key = (request.swarm_id, request.subtask.id)
        self.attempt = request.attempt
        self.window_secs = window_secs
        self.last_sequence = 0
        self.result: executor_pb2.ExecuteSubTaskResponse | None = None
        self.subscribers = 0
        #: CancelSubTask asked for it: a new attempt replaces it rather than follows it.
        self.cancel_requested = False
        #: Attempt numbers callers follow this attempt as (its own, and newer ones sent for it).
        self.attempts = {request.attempt}
        self.task: asyncio.Task[None] | None = None
        self.expiry: asyncio.TimerHandle | None = None
        self._messages: deque[executor_pb2.ExecuteSubTaskResponse] = deque()
        self._bytes = 0
        self._buffer_bytes = buffer_bytes
        self._changed = asyncio.Event()

    @property
    def finished(self) -> bool:
        return self.result is not None

    def append(self, message: executor_pb2.ExecuteSubTaskResponse) -> None:
        """Number and keep one message of the plugin's stream, wake the readers."""
        if self.finished:
            return
        self.last_sequence += 1
        numbered = executor_pb2.ExecuteSubTaskResponse()
        numbered.CopyFrom(message)
        numbered.sequence = self.last_sequence
        if numbered.HasField("result"):
            self.result = numbered
        self._messages.append(numbered)
        self._bytes += numbered.ByteSize()
        while self._bytes > self._buffer_bytes and len(self._messages) > 1:
            dropped = self._messages.popleft()
            self._bytes -= dropped.ByteSize()
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def compact(self) -> None:
        """Keep only the result (once it was delivered)."""
        if self.result is not None:
            self._messages = deque([self.result])
            self._bytes = self.result.ByteSize()

    def _after(self, sequence: int) -> list[executor_pb2.ExecuteSubTaskResponse]:
        if not self._messages:
            return []
        first = self._messages[0].sequence
        start = max(0, sequence + 1 - first)
        return [self._messages[i] for i in range(start, len(self._messages))]

    async def follow(self, after: int, heartbeat_secs: float) -> AsyncIterator[executor_pb2.ExecuteSubTaskResponse]:
        """Messages with a sequence above ``after``, then live ones, up to the
        result; a heartbeat after each ``heartbeat_secs`` with nothing to send."""
        last = after
        while True:
            pending = self._after(last)
            for message in pending:
                yield message
                last = message.sequence
                if message.HasField("result"):
                    return
            if pending:
                continue  # more may have come while those were sent
            changed = self._changed
            try:
                async with asyncio.timeout(heartbeat_secs):
                    await changed.wait()
            except TimeoutError:
                yield executor_pb2.ExecuteSubTaskResponse(heartbeat=heartbeat(last, heartbeat_secs))


class AttemptStreams:
    """The attempts this executor service runs or keeps, by (swarm, subtask)."""

    def __init__(self, buffer_bytes: int = DEFAULT_BUFFER_BYTES) -> None:
        self._records: dict[Key, AttemptRecord] = {}
        self._buffer_bytes = buffer_bytes
        self._closed = False

    def running(self) -> int:
        """Attempts not finished yet."""
        return sum(1 for r in self._records.values() if not r.finished)

    def get(self, swarm_id: str, subtask_id: str) -> AttemptRecord | None:
        return self._records.get((swarm_id, subtask_id))

    async def start(
        self,
        request: executor_pb2.ExecuteSubTaskRequest,
        executor: Executor,
        *,
        window_secs: float,
        plugin: str = "",
    ) -> AttemptRecord:
        """Start an attempt; the running attempt of the subtask when there is one.

        An unfinished older attempt is returned for the caller to follow (a
        second sub-agent on the same subtask could merge its work twice),
        unless it was asked to cancel: then it is stopped and the new one starts.
        """
        key = (request.swarm_id, request.subtask.id)
        existing = self._records.get(key)
        if existing is not None:
            if existing.attempt == request.attempt and not existing.finished:
                raise AlreadyExists(
                    f"attempt {request.attempt} of subtask {request.subtask.id} of swarm {request.swarm_id} "
                    "is already running on this executor; AttachSubTask follows it"
                )
            if not existing.finished and not existing.cancel_requested:
                # Sent again by a caller that lost track of it (an orchestrator
                # that restarted): one sub-agent per subtask, the caller follows it.
                log.info(
                    "attempt %d of %s asked for while attempt %d runs: following the running one",
                    request.attempt, request.subtask.id, existing.attempt,
                )
                existing.attempts.add(request.attempt)
                return existing
            await self._stop(existing)
        record = AttemptRecord(
            request, executor, window_secs=window_secs, buffer_bytes=self._buffer_bytes, plugin=plugin
        )
        self._records[key] = record
        record.task = asyncio.get_running_loop().create_task(
            self._run_with_credentials(record), name=f"swarmd-attempt-{request.subtask.id}-{request.attempt}"
        )
        return record

    async def _run_with_credentials(self, record: AttemptRecord) -> None:
        """Run the attempt; its calls to peers present the attempt's subagent token, if any."""
        with attempt_credentials(record.request.subagent_token):
            await self._run(record)

    async def _run(self, record: AttemptRecord) -> None:
        request = record.request
        stream: AsyncIterator[executor_pb2.ExecuteSubTaskResponse] | None = None
        try:
            stream = record.executor.submit(request)
            async for message in stream:
                garbage = _malformed(message)
                if garbage:
                    log.error("%s %s while running %s", record.plugin, garbage, request.subtask.id)
                    record.append(
                        _failure(
                            request,
                            f"{record.plugin} broke the executor contract: it {garbage}",
                            common_pb2.FAILURE_KIND_PERMANENT,
                        )
                    )
                    break
                if message.HasField("heartbeat"):
                    continue  # this service sends its own
                if message.HasField("result"):
                    # A stream ends after its one result: what follows it is a broken contract.
                    after = await _after_result(stream)
                    if after:
                        log.error("%s %s while running %s", record.plugin, after, request.subtask.id)
                        message = _failure(
                            request,
                            f"{record.plugin} broke the executor contract: it {after}",
                            common_pb2.FAILURE_KIND_PERMANENT,
                        )
                    record.append(message)
                    break
                record.append(message)
            if not record.finished:
                record.append(
                    _failure(
                        request,
                        f"{record.plugin} ended the stream without a result",
                        common_pb2.FAILURE_KIND_TRANSIENT,
                    )
                )
        except asyncio.CancelledError:
            raise
        except SwarmdError as exc:
            # The plugin refused or lost the attempt with a status (a peer it
            # forwards to is unreachable, ...): a failed result of that kind.
            transient = exc.code in _TRANSIENT_CODES
            log.warning("%s failed running %s: %s: %s", record.plugin, request.subtask.id, exc.code.name, exc.message)
            record.append(
                _failure(
                    request,
                    f"executor call failed: {exc.code.name}: {exc.message} (from {record.plugin})",
                    common_pb2.FAILURE_KIND_TRANSIENT if transient else common_pb2.FAILURE_KIND_PERMANENT,
                )
            )
        except Exception as exc:
            log.exception("%s failed running %s", record.plugin, request.subtask.id)
            record.append(
                _failure(
                    request,
                    f"executor error: {record.plugin} raised {type(exc).__name__}: {exc}",
                    common_pb2.FAILURE_KIND_PERMANENT,
                )
            )
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
            # Stopped before the plugin gave a result (abandoned, or the service
            # is shutting down): whoever reads on gets a transient failure.
            record.append(
                _failure(
                    request, "the attempt was stopped on the executor before it finished", common_pb2.FAILURE_KIND_TRANSIENT
                )
            )
            if record.subscribers == 0:
                self._schedule_expiry(record)

    async def follow(
        self, record: AttemptRecord, after: int, heartbeat_secs: float
    ) -> AsyncIterator[executor_pb2.ExecuteSubTaskResponse]:
        """:meth:`AttemptRecord.follow` as one subscriber; when the last one
        leaves, the reattach window starts."""
        record.subscribers += 1
        if record.expiry is not None:
            record.expiry.cancel()
            record.expiry = None
        delivered = False
        try:
            async for message in record.follow(after, heartbeat_secs):
                yield message
                delivered = message.HasField("result")
            if delivered:
                # The result went out: only it is kept for a caller that
                # lost it on the way, not the events before it.
                record.compact()
        finally:
            record.subscribers -= 1
            if record.subscribers == 0:
                self._schedule_expiry(record)

    def _schedule_expiry(self, record: AttemptRecord) -> None:
        if self._records.get(record.key) is not record or record.expiry is not None:
            return
        if record.window_secs <= 0 or self._closed:
            self._expire(record)
        else:
            record.expiry = asyncio.get_running_loop().call_later(record.window_secs, self._expire, record)

    def _expire(self, record: AttemptRecord) -> None:
        record.expiry = None
        if record.subscribers:
            return
        if not record.finished and record.task is not None:
            log.info(
                "attempt %d of %s: nobody reattached within %gs; stopping it",
                record.attempt,
                record.request.subtask.id,
                record.window_secs,
            )
            record.task.cancel()
        if self._records.get(record.key) is record:
            del self._records[record.key]

    async def _stop(self, record: AttemptRecord) -> None:
        if record.expiry is not None:
            record.expiry.cancel()
            record.expiry = None
        if self._records.get(record.key) is record:
            del self._records[record.key]
        task = record.task
        if task is None or task.done():
            return
        for _ in range(STOP_TRIES):
            task.cancel()
            done, _pending = await asyncio.wait({task}, timeout=STOP_WAIT_SECS)
            if done:
                return
        # A plugin that swallows cancellation must not hold the service (or its shutdown).
        log.error(
            "%s ignored %d cancellations of attempt %d of %s; left behind",
            record.plugin, STOP_TRIES, record.attempt, record.request.subtask.id,
        )

    async def aclose(self) -> None:
        """Stop every attempt (the service is shutting down)."""
        self._closed = True
        records = list(self._records.values())
        await asyncio.gather(*(self._stop(r) for r in records), return_exceptions=True)
