"""``check_executor``: the executor contract, checked against a live instance.

Rules (each a :class:`~swarmd.plugins.testing.errors.ContractViolation`
``rule`` name):

``well-formed``
    every message is an ``ExecuteSubTaskResponse`` with an event, a
    heartbeat or a result; events carry the request's ``swarm_id``.
``one-result``
    a stream ends with exactly one result and nothing after it.
``result-fields``
    the result names the request's subtask, has a status, ``success`` is
    true exactly when the status is COMPLETED, and a failure says why.
``cancel-unknown``
    cancelling a subtask that is not running returns False.
``cancel``
    cancelling a running attempt returns True and its stream ends with a
    CANCELLED result within the cancel grace (the orchestrator's 2 s).
``close-stops``
    closing the stream early stops the work: ``in_flight`` is back to 0
    within the grace, and every process the attempt started (a descendant
    of the test's process, seen through ``/proc`` where there is one) has
    ended.
``capacity``
    ``capacity`` and ``in_flight`` are non-negative integers.
``aclose-twice``
    ``aclose()`` may be called twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from swarmd.plugins.executor import Executor, ExecutorContext
from swarmd.plugins.runtime.processes import live_descendants
from swarmd.plugins.testing.errors import ContractViolation
from swarmd.v1 import common_pb2, executor_pb2

__all__ = ["DEFAULT_CANCEL_GRACE_SECS", "check_executor", "check_stream"]

#: How long the orchestrator waits for the result after a cancel.
DEFAULT_CANCEL_GRACE_SECS = 2.0

Response = executor_pb2.ExecuteSubTaskResponse


def check_stream(plugin: object, request: executor_pb2.ExecuteSubTaskRequest, messages: list[object]) -> common_pb2.SubTaskResult:
    """Check one whole stream (rules ``well-formed``, ``one-result``,
    ``result-fields``); returns its result."""
    results = []
    for n, message in enumerate(messages):
        if not isinstance(message, Response):
            raise ContractViolation(plugin, "well-formed", f"message {n} is a {type(message).__name__}, not an ExecuteSubTaskResponse")
        kind = message.WhichOneof("payload")
        if kind is None:
            raise ContractViolation(plugin, "well-formed", f"message {n} has no event, result or heartbeat")
        if kind == "event":
            if message.event.WhichOneof("kind") is None:
                raise ContractViolation(plugin, "well-formed", f"event {n} has no kind")
            if message.event.swarm_id not in ("", request.swarm_id):
                raise ContractViolation(plugin, "well-formed", f"event {n} is for swarm {message.event.swarm_id!r}, not {request.swarm_id!r}")
        if kind == "result":
            results.append((n, message.result))
    if not results:
        raise ContractViolation(plugin, "one-result", "the stream ended without a result")
    if len(results) > 1:
        raise ContractViolation(plugin, "one-result", f"the stream has {len(results)} results; exactly one is allowed")
    n, result = results[0]
    if n != len(messages) - 1:
        raise ContractViolation(plugin, "one-result", f"{len(messages) - 1 - n} message(s) follow the result")
    if result.subtask_id != request.subtask.id:
        raise ContractViolation(plugin, "result-fields", f"result.subtask_id is {result.subtask_id!r}, not {request.subtask.id!r}")
    if result.status == common_pb2.SUB_TASK_STATUS_UNSPECIFIED:
        raise ContractViolation(plugin, "result-fields", "result.status is not set")
    if result.success != (result.status == common_pb2.SUB_TASK_STATUS_COMPLETED):
        raise ContractViolation(plugin, "result-fields", f"result.success is {result.success} with status {common_pb2.SubTaskStatus.Name(result.status)}")
    if not result.success and not result.error:
        raise ContractViolation(plugin, "result-fields", "a failed result must say why in result.error")
    return result


async def _collect(stream: AsyncIterator[object], sink: list[object]) -> None:
    async for message in stream:
        sink.append(message)


async def _in_time(task: asyncio.Task[None], seconds: float) -> bool:
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return bool(done)


def _check_counts(executor: Executor) -> None:
    for attribute in ("capacity", "in_flight"):
        value = getattr(executor, attribute)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ContractViolation(executor, "capacity", f"{attribute} is {value!r}, not a non-negative int")


async def check_executor(
    cls: type[Executor],
    context: ExecutorContext,
    *,
    quick: executor_pb2.ExecuteSubTaskRequest,
    slow: executor_pb2.ExecuteSubTaskRequest,
    cancel_grace: float = DEFAULT_CANCEL_GRACE_SECS,
    timeout: float = 30.0,
) -> None:
    """Check ``cls`` against every rule of the module docstring.

    :param context: what the executor service would give it.
    :param quick: a request the executor finishes by itself within ``timeout``.
    :param slow: a request whose work runs until it is cancelled (e.g. a
        sub-agent whose model never answers: ``scripted/hang``). Its
        subtask id is changed for the second use.
    :raises ContractViolation: naming the first rule broken.
    """
    executor = cls(context)
    try:
        _check_counts(executor)
        messages: list[object] = []
        task = asyncio.create_task(_collect(executor.submit(quick), messages))
        if not await _in_time(task, timeout):
            task.cancel()
            raise ContractViolation(executor, "one-result", f"the quick request did not finish within {timeout:g}s")
        task.result()
        check_stream(executor, quick, messages)

        if await executor.cancel("no-such-swarm", "no-such-subtask", "conformance check") is not False:
            raise ContractViolation(executor, "cancel-unknown", "cancel() of a subtask that is not running must return False")

        await _check_cancel(executor, slow, cancel_grace, timeout)
        await _check_close(executor, slow, cancel_grace, timeout)
        _check_counts(executor)
    finally:
        await executor.aclose()
    try:
        await executor.aclose()
    except Exception as exc:
        raise ContractViolation(executor, "aclose-twice", f"a second aclose() raised {type(exc).__name__}: {exc}") from exc


async def _check_cancel(executor: Executor, slow: executor_pb2.ExecuteSubTaskRequest, grace: float, timeout: float) -> None:
    messages: list[object] = []
    task = asyncio.create_task(_collect(executor.submit(slow), messages))
    try:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout
        while not await executor.cancel(slow.swarm_id, slow.subtask.id, "conformance check"):
            if task.done() or loop.time() > give_up:
                raise ContractViolation(executor, "cancel", "cancel() never found the running attempt of the slow request")
            await asyncio.sleep(0.02)
        if not await _in_time(task, grace):
            raise ContractViolation(executor, "cancel", f"no result within the {grace:g}s cancel grace after cancel()")
        task.result()
        result = check_stream(executor, slow, messages)
        if result.status != common_pb2.SUB_TASK_STATUS_CANCELLED:
            raise ContractViolation(executor, "cancel", f"a cancelled attempt ended {common_pb2.SubTaskStatus.Name(result.status)}, not CANCELLED")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _check_close(executor: Executor, slow: executor_pb2.ExecuteSubTaskRequest, grace: float, timeout: float) -> None:
    request = executor_pb2.ExecuteSubTaskRequest()
    request.CopyFrom(slow)
    request.subtask.id = f"{slow.subtask.id}-closed"
    before = live_descendants()
    stream = executor.submit(request)
    try:
        async with asyncio.timeout(timeout):
            first = await anext(stream)
    except StopAsyncIteration:
        raise ContractViolation(executor, "one-result", "the slow request's stream ended at once, without a result") from None
    except TimeoutError:
        raise ContractViolation(executor, "close-stops", f"the slow request yielded nothing within {timeout:g}s") from None
    if isinstance(first, Response) and first.HasField("result"):
        raise ContractViolation(executor, "close-stops", "the slow request finished by itself; it must run until cancelled")
    await stream.aclose()  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while executor.in_flight:
        if loop.time() > deadline:
            raise ContractViolation(executor, "close-stops", f"in_flight is still {executor.in_flight} {grace:g}s after the stream was closed")
        await asyncio.sleep(0.02)
    while left := live_descendants() - before:
        if loop.time() > deadline:
            raise ContractViolation(
                executor,
                "close-stops",
                f"process(es) {', '.join(map(str, sorted(left)))} the attempt started still run "
                f"{grace:g}s after the stream was closed",
            )
        await asyncio.sleep(0.02)
