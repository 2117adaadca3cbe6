"""Swarms whose orchestrator is gone: interrupted, resumed on purpose, or on restart.

Every swarm records its owner (:class:`~swarmd.v1.common_pb2.SwarmOwner`):
the host, process and address of the orchestrator running it, and whether
that orchestrator is *embedded* (the services a ``swarmd run`` starts in its
own process, which end with that command) or standalone.

An orchestrator that stops with swarms still live marks them INTERRUPTED.
When one starts, it first replays its journal into the store
(:mod:`.journal_replay`: the events and state saves the previous
orchestrator had not got confirmed), so what follows reads the truth. Then
(:meth:`Recovery.startup`) it looks at every stored swarm left PLANNING,
RUNNING or INTERRUPTED:

* a standalone orchestrator resumes the swarms a standalone orchestrator
  left (its own previous life), unless their owner is provably alive;
* a swarm left RUNNING by an owner that is provably gone (same host, its
  process has ended) is marked INTERRUPTED;
* nothing else is touched: an embedded orchestrator, started by ``swarmd
  watch``, ``cancel`` or ``run``, never resumes anything on its own.

``ResumeSwarm`` (``swarmd resume ID``) resumes one swarm on purpose. Finished
subtasks are kept as they are (their results are not re-run); subtasks that
were running are dispatched again, after the executor has been told to drop
the old attempt, within their retry budget (see
:func:`~.retry.resumed_first_attempt`); event numbering continues from the stored
log's last sequence. A ``swarm_resumed`` warning says what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable

import grpc

from swarmd.plugins import ModelProvider
from swarmd.plugins.manager import Plugins
from swarmd.services.config import TlsSettings
from swarmd.services.errors import FailedPrecondition, SwarmdError
from swarmd.services.orchestrator.context import TERMINAL, TERMINAL_SWARM, RunContext
from swarmd.services.orchestrator.decomposer import create_decomposition_provider
from swarmd.services.orchestrator.journal_replay import replay_journal
from swarmd.services.orchestrator.planning import PlanWarning
from swarmd.services.orchestrator.reconcile import (
    complete_from_merge,
    merged_subtasks,
    merges_expected,
)
from swarmd.services.orchestrator.run import SwarmRun, mark_interrupted
from swarmd.services.orchestrator.speculation.variants import attempt_ids
from swarmd.services.tls import channel_credentials, channel_tls_options
from swarmd.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc, result_store_pb2

__all__ = [
    "Recovery",
    "forward_cancel",
    "new_owner",
    "owner_gone",
    "resumed_run",
    "restart",
]

log = logging.getLogger(__name__)

_USAGE_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
)
_PAGE = 1000
_UNFINISHED = (
    common_pb2.SWARM_STATE_PLANNING,
    common_pb2.SWARM_STATE_RUNNING,
    common_pb2.SWARM_STATE_INTERRUPTED,
)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_gone(owner: common_pb2.SwarmOwner, me: common_pb2.SwarmOwner) -> bool:
    """True when ``owner`` is provably not running any more (a swarm without
    an owner was stored by an older swarmd and counts as gone)."""
    if not owner.instance_id:
        return True
    if owner.instance_id == me.instance_id:
        return False
    if owner.host != me.host:
        return False  # cannot tell from here
    return owner.pid == me.pid or not _pid_alive(owner.pid)


def resumed_run(
    ctx: RunContext,
    stored: common_pb2.Swarm,
    last_sequence: int,
    *,
    provider: ModelProvider | None = None,
) -> tuple[SwarmRun, list[str]]:
    """A run continuing ``stored``, and the ids of the subtasks that were running."""
    swarm = common_pb2.Swarm()
    swarm.CopyFrom(stored)
    swarm.error = ""
    interrupted: list[str] = []
    for state in swarm.subtasks:
        if state.status in TERMINAL:
            continue
        if state.status == common_pb2.SUB_TASK_STATUS_RUNNING:
            interrupted.append(state.subtask.id)
        state.status = (
            common_pb2.SUB_TASK_STATUS_BLOCKED
            if state.subtask.dependencies
            else common_pb2.SUB_TASK_STATUS_PENDING
        )
        state.current_tool = ""
        state.status_reason = ""
    if swarm.state == common_pb2.SWARM_STATE_INTERRUPTED:
        swarm.state = (
            common_pb2.SWARM_STATE_RUNNING if swarm.subtasks else common_pb2.SWARM_STATE_PLANNING
        )
    run = SwarmRun(ctx, swarm, last_sequence=last_sequence, provider=provider)
    run.announced = swarm.state == common_pb2.SWARM_STATE_RUNNING and bool(stored.subtasks)
    # The orchestrator's own usage is not stored apart from the totals; what
    # the totals hold beyond the subtasks' results is a close estimate.
    usage = run.orchestrator_usage
    usage.CopyFrom(stored.stats.usage)
    for state in stored.subtasks:
        for name in _USAGE_FIELDS:
            setattr(usage, name, max(0, getattr(usage, name) - getattr(state.result.usage, name)))
    run.orchestrator_cost = max(
        0.0, stored.stats.cost_usd - sum(s.result.cost_usd for s in stored.subtasks)
    )
    run.ledger.record_overhead(usage.total_tokens, run.orchestrator_cost)
    for state in stored.subtasks:
        result = state.result
        run.ledger.settle(
            state.subtask.id, result.tool_calls, result.usage.total_tokens, result.cost_usd
        )
    return run, interrupted


async def reconcile_with_branch(swarm: common_pb2.Swarm) -> list[str]:
    """Complete the subtasks whose merge is on the branch though the stored
    state does not say so (see :mod:`.reconcile`); subtasks skipped only
    because of them wait again. Returns the ids completed."""
    wanted = [
        s for s in swarm.subtasks
        if s.status != common_pb2.SUB_TASK_STATUS_COMPLETED and merges_expected(swarm.config, s.subtask)
    ]
    if not wanted:
        return []
    merged = await merged_subtasks(swarm.config.repo_path, swarm.id)
    done = []
    for state in wanted:
        work = merged.get(state.subtask.id)
        if work is not None:
            complete_from_merge(state, work)
            done.append(state.subtask.id)
    if done:
        log.warning("swarm %s: %d subtask(s) found merged on the branch: %s", swarm.id, len(done), ", ".join(done))
        by_id = {s.subtask.id: s for s in swarm.subtasks}
        bad = TERMINAL - {common_pb2.SUB_TASK_STATUS_COMPLETED}
        changed = True
        while changed:
            changed = False
            for state in swarm.subtasks:
                deps = [by_id[d] for d in state.subtask.dependencies if d in by_id]
                if state.status == common_pb2.SUB_TASK_STATUS_SKIPPED and not any(d.status in bad for d in deps):
                    state.status = common_pb2.SUB_TASK_STATUS_BLOCKED
                    state.status_reason = ""
                    state.result.Clear()
                    changed = True
    return done


async def restart(run: SwarmRun, interrupted: list[str]) -> None:
    """Tell the executor to drop the interrupted attempts, then start the run."""
    for sid in interrupted:
        # A speculative subtask's attempts run under its variants' ids.
        for attempt_id in attempt_ids(run.states[sid]):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(run.ctx.settings.rpc_timeout_secs):
                    await run.ctx.executor.cancel(
                        run.id, attempt_id, "orchestrator restarted; the subtask is re-dispatched"
                    )
    finished = sum(s.status in TERMINAL for s in run.swarm.subtasks)
    run.warnings.append(
        PlanWarning(
            "swarm_resumed",
            f"the swarm was resumed; {finished} finished subtasks are kept and "
            f"{len(run.swarm.subtasks) - finished} are dispatched again "
            f"({len(interrupted)} were running and are re-run from a new attempt)",
        )
    )
    run.start()


class Recovery:
    """What an orchestrator does with swarms another orchestrator left behind."""

    def __init__(
        self,
        ctx: RunContext,
        plugins: Plugins,
        runs: dict[str, SwarmRun],
        adopt: Callable[[SwarmRun], None],
        owner: Callable[[], common_pb2.SwarmOwner],
        *,
        embedded: bool,
    ) -> None:
        self.ctx = ctx
        self.plugins = plugins
        self.runs = runs
        self.adopt = adopt
        self.owner = owner
        self.embedded = embedded
        #: Held while stored swarms are resumed, interrupted or cancelled in the store.
        self.lock = asyncio.Lock()
        #: Set once the journal a previous orchestrator left is in the store.
        self.replayed = asyncio.Event()
        if ctx.journal is None:
            self.replayed.set()

    async def replay(self) -> None:
        """Replay the journal into the store once (raises while the store is down)."""
        if not self.replayed.is_set():
            assert self.ctx.journal is not None
            await replay_journal(self.ctx.journal, self.ctx.store)
            self.replayed.set()

    async def _unfinished(self) -> list[common_pb2.Swarm]:
        pending: list[common_pb2.Swarm] = []
        request = result_store_pb2.ListSwarmStatesRequest(states=list(_UNFINISHED), limit=_PAGE)
        while True:
            page = await self.ctx.store.list_swarms(request)
            pending.extend(page)
            if len(page) < _PAGE:
                return pending
            request.after_id = page[-1].id
            request.after_created_at.CopyFrom(page[-1].created_at)

    async def startup(self) -> list[str]:
        """Resume or mark interrupted what previous orchestrators left (see the
        module docstring); returns the ids resumed."""
        me = self.owner()
        resumed: list[str] = []
        for stored in await self._unfinished():
            if stored.id in self.runs:
                continue
            gone = owner_gone(stored.owner, me)
            if not self.embedded and not stored.owner.embedded and gone:
                with contextlib.suppress(FailedPrecondition):
                    if await self._resume(stored):
                        resumed.append(stored.id)
                continue
            if gone and stored.state != common_pb2.SWARM_STATE_INTERRUPTED:
                who = (
                    f"its orchestrator (process {stored.owner.pid} on {stored.owner.host}) is gone"
                    if stored.owner.instance_id
                    else "its orchestrator is gone"
                )
                mark_interrupted(stored, who)
                with contextlib.suppress(SwarmdError):
                    await self.ctx.store.save_swarm(stored)
                log.warning("swarm %s was left unfinished: marked interrupted", stored.id)
        return resumed

    async def resume(self, swarm_id: str) -> tuple[SwarmRun, bool]:
        """Resume one stored swarm on purpose: (its run, whether it already ran here)."""
        async with self.lock:
            run = self.runs.get(swarm_id)
            if run is not None:
                return run, True
            await self.replay()
            stored = await self.ctx.store.load_swarm(swarm_id)
            if stored.state in TERMINAL_SWARM:
                name = common_pb2.SwarmState.Name(stored.state).removeprefix("SWARM_STATE_").lower()
                raise FailedPrecondition(f"swarm {swarm_id!r} is {name}; there is nothing to resume")
            if not owner_gone(stored.owner, self.owner()):
                raise FailedPrecondition(
                    f"swarm {swarm_id!r} is run by a live orchestrator "
                    f"(process {stored.owner.pid} on {stored.owner.host}, "
                    f"{stored.owner.address or 'no address'})"
                )
            run = await self._resume(stored)
            if run is None:
                raise FailedPrecondition(f"swarm {swarm_id!r} could not be resumed: {stored.error}")
            return run, False

    async def _resume(self, stored: common_pb2.Swarm) -> SwarmRun | None:
        try:
            _, last = await self.ctx.store.read_events(stored.id, 0, 1)
            provider = None
            if not stored.subtasks:
                provider = create_decomposition_provider(
                    self.plugins, stored.config, self.ctx.settings.decomposition_options
                )
            run, interrupted = resumed_run(self.ctx, stored, last, provider=provider)
        except SwarmdError as exc:
            log.error("cannot resume swarm %s: %s", stored.id, exc.message)
            stored.state = common_pb2.SWARM_STATE_FAILED
            stored.error = f"could not be resumed: {exc.message}"
            stored.finished_at.GetCurrentTime()
            with contextlib.suppress(SwarmdError):
                await self.ctx.store.save_swarm(stored)
            return None
        await reconcile_with_branch(run.swarm)
        run.swarm.owner.CopyFrom(self.owner())
        run.writer.save_swarm()
        self.adopt(run)
        await restart(run, interrupted)
        return run

    def when_serving(
        self, serving: Callable[[], bool], tasks: set[asyncio.Task[None]], *, resume: bool = True
    ) -> None:
        """Run :meth:`startup` in the background once ``serving()`` is true
        (executors need the bound address), after the journal is replayed,
        retrying while the store is down."""
        task = asyncio.get_running_loop().create_task(
            self._loop(serving, resume), name="resume-swarms"
        )
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _loop(self, serving: Callable[[], bool], resume: bool) -> None:
        # The host has no "started" notification to wait on; it starts right
        # after the orchestrator is built, so a short poll is enough.
        while not serving():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        # The journal holds what only this process knows: it is retried for
        # as long as the store stays away (resuming waits for it).
        delay, failures = 0.2, 0
        while not self.replayed.is_set():
            try:
                async with self.lock:
                    await self.replay()
            except SwarmdError as exc:
                failures += 1
                if failures == 1 or failures % 50 == 0:
                    log.warning("cannot replay the journal yet (%s); retrying", exc.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if not resume:
            return
        delay = 0.2
        for _ in range(30):
            try:
                async with self.lock:
                    resumed = await self.startup()
            except SwarmdError as exc:
                log.info("cannot list unfinished swarms yet (%s); retrying", exc.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if resumed:
                log.info("resumed %d swarm(s): %s", len(resumed), ", ".join(resumed))
            return
        log.error("gave up resuming unfinished swarms: the result store stayed unreachable")


async def forward_cancel(
    owner: common_pb2.SwarmOwner,
    request: orchestrator_pb2.CancelSwarmRequest,
    timeout: float,
    tls: TlsSettings | None = None,
    token: str = "",
) -> orchestrator_pb2.CancelSwarmResponse | None:
    """Ask the live orchestrator ``owner`` to cancel (over TLS with ``tls``'s
    credentials when set, presenting the service ``token`` when given); None
    when it cannot be reached."""
    if not owner.address:
        return None
    creds = channel_credentials(tls) if tls is not None else None
    try:
        async with (
            grpc.aio.insecure_channel(owner.address)
            if creds is None
            else grpc.aio.secure_channel(owner.address, creds, options=channel_tls_options(tls))
        ) as channel:
            stub = orchestrator_pb2_grpc.OrchestratorServiceStub(channel)
            metadata = (("authorization", f"Bearer {token}"),) if token else None
            return await stub.CancelSwarm(request, timeout=timeout, metadata=metadata)
    except grpc.aio.AioRpcError as exc:
        log.info("cannot forward the cancel to %s: %s", owner.address, exc.code().name)
        return None


def new_owner(address: str, *, embedded: bool) -> common_pb2.SwarmOwner:
    """The identity of this orchestrator process."""
    return common_pb2.SwarmOwner(
        host=socket.gethostname(),
        pid=os.getpid(),
        address=address,
        embedded=embedded,
        instance_id=uuid.uuid4().hex,
    )
