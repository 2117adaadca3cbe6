"""Following one attempt on an executor service, across broken streams.

Whoever sends ``ExecuteSubTask`` (the orchestrator's dispatch, the
``remote`` plugin) reads the attempt through :func:`follow_attempt`. It
yields the stream's events and ends with exactly one result message, and it
hides what the network does meanwhile:

* heartbeats are consumed here (they only prove the stream is alive); a
  stream silent for a few heartbeat intervals counts as broken;
* a broken stream (``UNAVAILABLE``, a reset, GOAWAY, silence) is picked up
  again with ``AttachSubTask`` from the last sequence received: the
  executor kept running the attempt, nothing is started over and no retry
  is spent;
* an executor that cannot be reached is waited for (backoff up to a few
  seconds between tries) for ``outage_secs``, with a notice that the
  attempt is waiting; only then does the attempt fail (transiently);
* an executor that answers but no longer has the attempt (it restarted)
  gets the same request again, up to ``max_restarts`` times; the sub-agent
  then starts from its kept worktree.

Failures are reported as a failed result message with a failure kind, never
raised, as an executor's stream would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from swarmd.v1 import common_pb2, executor_pb2, executor_pb2_grpc

__all__ = ["BROKEN_STREAM_CODES", "FollowPolicy", "NoticeSink", "follow_attempt"]

#: Status codes of a stream that broke on the way rather than being refused.
BROKEN_STREAM_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.CANCELLED}
)
#: Codes of a refusal worth another attempt later (the executor is busy).
_TRANSIENT_REFUSALS = frozenset({grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED})

#: ``notice(code, message)``: something the caller should tell its users
#: ("executor_unavailable", "executor_reattached", "executor_lost_attempt").
NoticeSink = Callable[[str, str], None]


@dataclass(frozen=True)
class FollowPolicy:
    """How an attempt is followed (see the module docstring)."""

    #: Heartbeat interval asked of the executor.
    heartbeat_secs: float = 10.0
    #: How long an unreachable executor is waited for.
    outage_secs: float = 300.0
    #: Sent as ``reattach_window_ms``: how long the executor keeps a broken
    #: attempt for us; a little longer than we wait.
    reattach_window_secs: float | None = None
    #: Times an attempt the executor lost is sent again.
    max_restarts: int = 3
    #: Longest pause between two tries to reach the executor.
    max_backoff_secs: float = 5.0
    #: AttachSubTask calls answered NOT_FOUND before the attempt counts as
    #: lost (over a balanced channel a call may reach another executor).
    attach_probes: int = 4

    @property
    def silence_secs(self) -> float:
        """A stream with no message (heartbeats included) this long is broken."""
        return max(3 * self.heartbeat_secs, self.heartbeat_secs + 5.0)

    @property
    def probe_timeout_secs(self) -> float:
        """Deadline of the reachability check made before reattaching."""
        return min(5.0, max(1.0, 3 * self.heartbeat_secs))

    @property
    def window_secs(self) -> float:
        if self.reattach_window_secs is not None:
            return self.reattach_window_secs
        return self.outage_secs + 30.0


async def _probe(stub: executor_pb2_grpc.ExecutorServiceStub, policy: FollowPolicy) -> tuple[Any, str] | None:
    """Is the executor reachable? A short unary call, so a stream call never
    hangs on a connection that cannot be made; (code, details) when not."""
    try:
        await stub.Describe(executor_pb2.DescribeRequest(), timeout=policy.probe_timeout_secs)
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return grpc.StatusCode.UNAVAILABLE, f"no answer within {policy.probe_timeout_secs:g}s"
        if code in BROKEN_STREAM_CODES:
            return code, exc.details() or ""
    return None  # it answered (even a refusal says it is there)


class _Silent(Exception):
    """No message, not even a heartbeat, for the policy's silence."""


def _failed(error: str, kind: common_pb2.FailureKind) -> executor_pb2.ExecuteSubTaskResponse:
    return executor_pb2.ExecuteSubTaskResponse(
        result=common_pb2.SubTaskResult(
            success=False, status=common_pb2.SUB_TASK_STATUS_FAILED, failure_kind=kind, error=error
        )
    )


def _refusal_kind(code: grpc.StatusCode) -> common_pb2.FailureKind:
    if code in _TRANSIENT_REFUSALS:
        return common_pb2.FAILURE_KIND_TRANSIENT
    return common_pb2.FAILURE_KIND_PERMANENT


async def _messages(call: Any, attached: bool, silence: float) -> AsyncIterator[executor_pb2.ExecuteSubTaskResponse]:
    iterator = call.__aiter__()
    while True:
        try:
            async with asyncio.timeout(silence):
                reply = await iterator.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise _Silent from None
        yield reply.message if attached else reply


async def follow_attempt(
    stub: executor_pb2_grpc.ExecutorServiceStub,
    request: executor_pb2.ExecuteSubTaskRequest,
    policy: FollowPolicy,
    *,
    timeout: float | None = None,
    notice: NoticeSink | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[executor_pb2.ExecuteSubTaskResponse]:
    """Events of the attempt ``request`` starts, then its result (see the module docstring).

    ``timeout`` bounds the whole attempt, reattaches included (the calls'
    deadline); ``request`` gets the policy's heartbeat and reattach window.
    """
    tell = notice or (lambda _code, _message: None)
    sent = executor_pb2.ExecuteSubTaskRequest()
    sent.CopyFrom(request)
    sent.heartbeat_interval_ms = max(1, int(policy.heartbeat_secs * 1000))
    sent.reattach_window_ms = max(0, int(policy.window_secs * 1000))
    what = f"attempt {request.attempt} of {request.subtask.id}"
    deadline = None if timeout is None else time.monotonic() + timeout
    last = 0  # sequence of the last message received
    attach = False  # the attempt may be running there: reattach, do not start it
    received = False  # the executor has sent something for this attempt
    restarts = 0
    broken_at: float | None = None  # when the stream broke (None: it is fine)
    broken_why = ""
    tries = 0  # failed tries to reach the executor since it broke
    probes = 0  # NOT_FOUND answers to AttachSubTask in a row
    told_outage = False
    while True:
        remaining = None if deadline is None else max(0.001, deadline - time.monotonic())
        probe_failure = await _probe(stub, policy) if broken_at is not None else None
        if probe_failure is not None:
            code, details = probe_failure
        elif attach:
            call: Any = stub.AttachSubTask(
                executor_pb2.AttachSubTaskRequest(
                    swarm_id=request.swarm_id,
                    subtask_id=request.subtask.id,
                    attempt=request.attempt,
                    after_sequence=last,
                    heartbeat_interval_ms=sent.heartbeat_interval_ms,
                ),
                timeout=remaining,
            )
        else:
            call = stub.ExecuteSubTask(sent, timeout=remaining)
        if probe_failure is None:
            try:
                async for message in _messages(call, attach, policy.silence_secs):
                    if broken_at is not None:
                        waited = time.monotonic() - broken_at
                        tell(
                            "executor_reattached",
                            f"{what}: the executor stream broke ({broken_why}); reattached after {waited:.1f}s "
                            f"at message {last}, nothing was lost or started over",
                        )
                        broken_at, tries, told_outage = None, 0, False
                    received = True
                    probes = 0
                    if message.HasField("heartbeat"):
                        continue
                    if message.sequence:
                        if message.sequence <= last:
                            continue  # already delivered before the break
                        last = message.sequence
                    yield message
                    if message.HasField("result"):
                        return
                yield _failed("the executor's stream ended without a result", common_pb2.FAILURE_KIND_TRANSIENT)
                return
            except _Silent:
                code, details = None, f"no message for {policy.silence_secs:g}s"
            except grpc.aio.AioRpcError as exc:
                code, details = exc.code(), exc.details() or ""
            finally:
                call.cancel()
        if attach and code == grpc.StatusCode.NOT_FOUND and received and probes < policy.attach_probes:
            # Calls over a channel balanced across executors may land on
            # another one than the attempt's: ask again before giving it up.
            probes += 1
            continue
        if attach and code == grpc.StatusCode.NOT_FOUND:
            probes = 0
            if broken_at is not None and received:
                restarts += 1
                if restarts > policy.max_restarts:
                    yield _failed(
                        f"the executor lost {what} {restarts} times ({details})", common_pb2.FAILURE_KIND_TRANSIENT
                    )
                    return
                tell(
                    "executor_lost_attempt",
                    f"{what}: the executor no longer has it (restarted?); sending it again "
                    f"({restarts} of {policy.max_restarts}); the sub-agent goes on from its kept worktree",
                )
            attach, last, broken_at, tries, told_outage = False, 0, None, 0, False
            continue
        if not attach and code == grpc.StatusCode.ALREADY_EXISTS:
            attach = True  # our own earlier send got there: follow it
            continue
        if code is not None and code not in BROKEN_STREAM_CODES:
            yield _failed(f"executor call failed: {code.name}: {details}", _refusal_kind(code))
            return
        # The stream broke, or the executor cannot be reached: reattach.
        name = code.name if code is not None else "SILENT"
        now = time.monotonic()
        if broken_at is None:
            broken_at, broken_why = now, f"{name}: {details}"
        elif now - broken_at >= policy.outage_secs:
            yield _failed(
                f"executor unreachable for {now - broken_at:.0f}s ({name}: {details})",
                common_pb2.FAILURE_KIND_TRANSIENT,
            )
            return
        attach = True
        if tries and not told_outage:
            told_outage = True
            tell(
                "executor_unavailable",
                f"{what}: the executor cannot be reached ({name}: {details}); waiting up to "
                f"{policy.outage_secs:g}s for it, the attempt is kept",
            )
        delay = 0.0 if tries == 0 else min(policy.max_backoff_secs, 0.25 * 2 ** min(tries - 1, 10))
        tries += 1
        if delay:
            await sleep(delay)
