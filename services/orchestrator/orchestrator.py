"""The orchestrator: accepts swarms, keeps the live ones, answers for all of them.

Live swarms are :class:`~.run.SwarmRun` objects in memory; finished ones
are read back from the result store. Submission validates everything it can
before accepting (config, plan, workspace, executor plugin name) so a bad
request fails with INVALID_ARGUMENT and nothing half-started; planning by the
model and execution then go on in the background.

The spend RPCs (AcquirePermit, ReportOutcome, ReserveBudget) go to
:class:`~.spending.SpendDesk`: budgets are kept per swarm in its run's
ledger, the pacing by the shared :class:`GovernorRegistry`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from opentelemetry import trace

from swarmd.plugins.manager import Plugins
from swarmd.services.auth.outgoing import service_token_source
from swarmd.services.config import OrchestratorSettings
from swarmd.services.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    SwarmdError,
    Unavailable,
)
from swarmd.services.orchestrator.context import TERMINAL, TERMINAL_SWARM, RunContext
from swarmd.services.orchestrator.events import read_stored_events
from swarmd.services.orchestrator.governor import GovernorKey, GovernorRegistry
from swarmd.services.orchestrator.journal import Journal
from swarmd.services.orchestrator.peers import ExecutorClient, StoreClient
from swarmd.services.orchestrator.queries import SwarmQueries, event_filter
from swarmd.services.orchestrator.resume import Recovery, forward_cancel, new_owner, owner_gone
from swarmd.services.orchestrator.run import SwarmRun
from swarmd.services.orchestrator.speculation import claim_variant
from swarmd.services.orchestrator.spending import SpendDesk
from swarmd.services.orchestrator.submission import (
    SubmissionDeps,
    check_same_request,
    prepare_submission,
)
from swarmd.services.orchestrator.validation import validate_id
from swarmd.v1 import common_pb2, coordinator_pb2, orchestrator_pb2

__all__ = ["Orchestrator"]

log = logging.getLogger(__name__)

#: A git commit id (SHA-1 or SHA-256), as ClaimVariant receives it.
_COMMIT = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")

#: Namespace of swarm ids derived from a client's idempotency key.
_REQUEST_NAMESPACE = uuid.UUID("5d0c3f5e-9a43-4d55-8a57-1c3c1d6f2a10")
_MAX_REASON_CHARS = 1000
_MAX_REQUEST_ID_CHARS = 128
_CANCEL_WAIT_SECS = 10.0
_REPLAY_WAIT_SECS = 5.0


class Orchestrator:
    """Everything OrchestratorService does, independent of gRPC plumbing."""

    def __init__(
        self,
        *,
        settings: OrchestratorSettings,
        plugins: Plugins,
        store: StoreClient,
        executor: ExecutorClient,
        orchestrator_address: str,
        tracer: trace.Tracer | None = None,
        governor: GovernorRegistry | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        cwd: str | None = None,
        cancel_grace_secs: float = 2.0,
        on_close: Callable[[], Awaitable[None]] | None = None,
        embedded: bool = False,
        journal: Journal | None = None,
    ) -> None:
        self.settings = settings
        self.plugins = plugins
        self.store = store
        self.executor = executor
        self.governor = (
            governor
            if governor is not None
            else GovernorRegistry(
                initial_concurrency=min(
                    settings.governor_initial_concurrency, settings.governor_max_concurrency
                ),
                max_concurrency=settings.governor_max_concurrency,
                max_idle_keys=settings.governor_max_idle_keys,
                pause_ceiling_s=settings.governor_pause_ceiling_secs,
                max_pause_s=settings.governor_max_pause_secs,
                on_warning=self._rate_limit_warning,
            )
        )
        self.ctx = RunContext(
            store=store,
            executor=executor,
            settings=settings,
            orchestrator_address=orchestrator_address,
            tracer=tracer or trace.NoOpTracer(),
            governor=self.governor,
            rng=rng or random.Random(),
            sleep=sleep,
            cancel_grace_secs=cancel_grace_secs,
            journal=journal,
        )
        self._deps = SubmissionDeps(plugins, settings, executor, self.ctx.rng, sleep, cwd)
        self.spend = SpendDesk(settings, self.governor, self.live)
        self._runs: dict[str, SwarmRun] = {}
        self._submit_locks: dict[str, list[Any]] = {}
        self._reapers: set[asyncio.Task[None]] = set()
        self._on_close = on_close
        self._closed = False
        self._owner = new_owner(orchestrator_address, embedded=embedded)
        #: The token this orchestrator presents to another one (forwarded cancels).
        self._service_token = service_token_source(settings.auth)
        self.queries = SwarmQueries(self._runs, store, self._load)
        self.recovery = Recovery(
            self.ctx, plugins, self._runs, self._adopt, self.owner, embedded=embedded
        )

    # -- helpers --------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the orchestrator is shutting down")

    def _rate_limit_warning(self, key: GovernorKey, code: str, message: str) -> None:
        """Tell every live swarm that uses ``key`` why its calls wait so long."""
        for swarm_id in self.governor.swarms_using(key):
            run = self._runs.get(swarm_id)
            if run is not None and not run.terminal and not run.log.finished:
                run.log.emit("warning", common_pb2.SwarmWarning(code=code, message=message))

    def live(self, swarm_id: str) -> SwarmRun | None:
        """The live run of ``swarm_id``, if this orchestrator runs it."""
        return self._runs.get(swarm_id)

    async def _load(self, swarm_id: str) -> common_pb2.Swarm:
        # A swarm the journal holds news of is read once the replay is done.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_REPLAY_WAIT_SECS):
                await self.recovery.replayed.wait()
        try:
            return await self.store.load_swarm(swarm_id)
        except NotFound:
            raise NotFound(f"unknown swarm {swarm_id!r}") from None

    # -- submission -------------------------------------------------------------

    async def submit(
        self, request: orchestrator_pb2.SubmitSwarmRequest, *, tenant: str = ""
    ) -> orchestrator_pb2.SubmitSwarmResponse:
        """Start a swarm owned by ``tenant``; a ``request_id`` is one tenant's
        idempotency key (two tenants using the same key get two swarms)."""
        self._check_open()
        if not request.request_id:
            return await self._submit_new(request, str(uuid.uuid4()), tenant)
        if len(request.request_id) > _MAX_REQUEST_ID_CHARS:
            raise InvalidArgument(f"request_id is longer than {_MAX_REQUEST_ID_CHARS} characters")
        key = f"{tenant}\x00{request.request_id}" if tenant else request.request_id
        swarm_id = str(uuid.uuid5(_REQUEST_NAMESPACE, key))
        # One submission per idempotency key at a time; the lock lives while used.
        entry = self._submit_locks.setdefault(key, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                if not request.dry_run:
                    run = self._runs.get(swarm_id)
                    if run is not None:
                        snapshot = run.snapshot()
                        check_same_request(request, snapshot)
                        return orchestrator_pb2.SubmitSwarmResponse(
                            swarm=snapshot, preflight=run.preflight
                        )
                    with contextlib.suppress(NotFound):
                        stored = await self.store.load_swarm(swarm_id)
                        check_same_request(request, stored)
                        return orchestrator_pb2.SubmitSwarmResponse(swarm=stored)
                return await self._submit_new(request, swarm_id, tenant)
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._submit_locks[key]

    async def _submit_new(
        self, request: orchestrator_pb2.SubmitSwarmRequest, swarm_id: str, tenant: str
    ) -> orchestrator_pb2.SubmitSwarmResponse:
        sub = await prepare_submission(self._deps, request, swarm_id, tenant)
        sub.swarm.tenant = tenant
        if request.dry_run:
            return orchestrator_pb2.SubmitSwarmResponse(
                swarm=sub.dry_run_swarm(), preflight=sub.report
            )
        run = SwarmRun(
            self.ctx, sub.swarm, provider=sub.provider, warnings=sub.warnings, preflight=sub.report
        )
        if sub.subtasks is not None:
            run.install_plan(sub.subtasks, sub.stage_count, sub.source)
            sub.swarm.state = common_pb2.SWARM_STATE_RUNNING
            sub.swarm.started_at.GetCurrentTime()
        sub.swarm.owner.CopyFrom(self.owner())
        try:
            await self.store.save_swarm(run.snapshot())
        except SwarmdError:
            await sub.close_provider()
            raise
        self._adopt(run)
        run.start()
        return orchestrator_pb2.SubmitSwarmResponse(swarm=run.snapshot(), preflight=sub.report)

    def _adopt(self, run: SwarmRun) -> None:
        self._runs[run.id] = run
        reaper = asyncio.get_running_loop().create_task(self._reap(run), name=f"reap-{run.id}")
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)

    async def _reap(self, run: SwarmRun) -> None:
        """Forget a finished run once its final state and events are stored."""
        await run.done.wait()
        flushed = await run.log.flush(self.ctx.flush_timeout_secs) and await run.writer.flush(
            self.ctx.flush_timeout_secs
        )
        if not flushed or not run.terminal:
            return  # keep serving it from memory; the store is behind
        await run.close()
        swarm_id = run.id
        self.governor.forget_swarm(swarm_id)
        if self._runs.get(swarm_id) is run:
            del self._runs[swarm_id]

    # -- reading ----------------------------------------------------------------

    async def get(self, swarm_id: str) -> common_pb2.Swarm:
        return await self.queries.swarm(swarm_id)

    async def watch(
        self, request: orchestrator_pb2.WatchSwarmRequest
    ) -> AsyncIterator[common_pb2.SwarmEvent]:
        validate_id(request.swarm_id, "swarm_id")
        if request.after_sequence < 0:
            raise InvalidArgument("after_sequence must not be negative")
        keep = event_filter(request)
        run = self._runs.get(request.swarm_id)
        if run is not None:
            events = run.log.watch(request.after_sequence, history_only=request.history_only)
        else:
            await self._load(request.swarm_id)
            events = read_stored_events(self.store, request.swarm_id, request.after_sequence)
        async for event in events:
            if keep is None or keep(event):
                yield event

    # -- cancellation -------------------------------------------------------------

    async def cancel_swarm(
        self, request: orchestrator_pb2.CancelSwarmRequest
    ) -> orchestrator_pb2.CancelSwarmResponse:
        validate_id(request.swarm_id, "swarm_id")
        if len(request.reason) > _MAX_REASON_CHARS:
            raise InvalidArgument(f"reason is longer than {_MAX_REASON_CHARS} characters")
        run = self._runs.get(request.swarm_id)
        if run is None:
            # Not live here: decided on the stored state, never while this
            # orchestrator is resuming or interrupting stored swarms.
            async with self.recovery.lock:
                run = self._runs.get(request.swarm_id)
                if run is None:
                    return await self._cancel_not_live(request)
        state, already = run.cancel(request.reason)
        if not already:
            await run.wait(_CANCEL_WAIT_SECS)
            if run.terminal:
                state = run.swarm.state
        return orchestrator_pb2.CancelSwarmResponse(state=state, already_finished=already)

    async def _cancel_not_live(
        self, request: orchestrator_pb2.CancelSwarmRequest
    ) -> orchestrator_pb2.CancelSwarmResponse:
        stored = await self._load(request.swarm_id)
        if stored.state in TERMINAL_SWARM:
            return orchestrator_pb2.CancelSwarmResponse(state=stored.state, already_finished=True)
        if not owner_gone(stored.owner, self.owner()):
            # Live in another orchestrator: that one cancels it.
            forwarded = await forward_cancel(
                stored.owner, request, _CANCEL_WAIT_SECS + 5, self.settings.tls, self._service_token()
            )
            if forwarded is not None:
                return forwarded
        # Stored unfinished but not live anywhere (its orchestrator is gone):
        # cancel it in the store so it is never resumed.
        self._cancel_stored(stored, request.reason or "cancelled by user")
        await self.store.save_swarm(stored)
        return orchestrator_pb2.CancelSwarmResponse(state=stored.state, already_finished=False)

    @staticmethod
    def _cancel_stored(swarm: common_pb2.Swarm, reason: str, only: str | None = None) -> None:
        for state in swarm.subtasks:
            if state.status in TERMINAL or (only is not None and state.subtask.id != only):
                continue
            state.status = common_pb2.SUB_TASK_STATUS_CANCELLED
            state.status_reason = f"cancelled: {reason}"
            state.result.status = common_pb2.SUB_TASK_STATUS_CANCELLED
            state.result.failure_kind = common_pb2.FAILURE_KIND_CANCELLED
            state.result.error = state.status_reason
            state.finished_at.GetCurrentTime()
        if only is None:
            swarm.state = common_pb2.SWARM_STATE_CANCELLED
            swarm.error = ""
            swarm.finished_at.GetCurrentTime()

    async def cancel_subtask(
        self, request: orchestrator_pb2.CancelSubTaskRequest
    ) -> orchestrator_pb2.CancelSubTaskResponse:
        validate_id(request.swarm_id, "swarm_id")
        validate_id(request.subtask_id, "subtask_id")
        if len(request.reason) > _MAX_REASON_CHARS:
            raise InvalidArgument(f"reason is longer than {_MAX_REASON_CHARS} characters")
        run = self._runs.get(request.swarm_id)
        if run is None:
            stored = await self._load(request.swarm_id)
            match = [s for s in stored.subtasks if s.subtask.id == request.subtask_id]
            if not match:
                raise NotFound(f"swarm {request.swarm_id!r} has no subtask {request.subtask_id!r}")
            if match[0].status in TERMINAL:
                return orchestrator_pb2.CancelSubTaskResponse(
                    status=match[0].status, already_finished=True
                )
            if stored.state in TERMINAL_SWARM:
                raise FailedPrecondition(f"swarm {request.swarm_id!r} is finished")
            self._cancel_stored(
                stored, request.reason or "cancelled by user", only=request.subtask_id
            )
            await self.store.save_subtask(stored.id, match[0])
            return orchestrator_pb2.CancelSubTaskResponse(
                status=match[0].status, already_finished=False
            )
        if (
            run.swarm.state == common_pb2.SWARM_STATE_PLANNING
            and request.subtask_id not in run.states
        ):
            raise FailedPrecondition(
                f"swarm {request.swarm_id!r} is still planning; its subtasks are not known yet"
            )
        status, already, dispatch = run.cancel_subtask(request.subtask_id, request.reason)
        if dispatch is not None:
            status = await run.wait_subtask(request.subtask_id, _CANCEL_WAIT_SECS)
        return orchestrator_pb2.CancelSubTaskResponse(status=status, already_finished=already)

    # -- budgets and the rate governor ------------------------------------------

    async def acquire_permit(
        self, request: coordinator_pb2.AcquirePermitRequest
    ) -> coordinator_pb2.AcquirePermitResponse:
        self._check_open()
        return await self.spend.acquire_permit(request)

    async def report_outcome(
        self, request: coordinator_pb2.ReportOutcomeRequest
    ) -> coordinator_pb2.ReportOutcomeResponse:
        return await self.spend.report_outcome(request)

    async def reserve_budget(
        self, request: coordinator_pb2.ReserveBudgetRequest
    ) -> coordinator_pb2.ReserveBudgetResponse:
        self._check_open()
        return await self.spend.reserve_budget(request)

    async def claim_variant(
        self, request: coordinator_pb2.ClaimVariantRequest
    ) -> coordinator_pb2.ClaimVariantResponse:
        """A speculative variant's committed work claims its race (see :mod:`.speculation`)."""
        self._check_open()
        if not request.swarm_id or not request.subtask_id:
            raise InvalidArgument("ClaimVariant needs swarm_id and subtask_id")
        validate_id(request.swarm_id, "swarm_id")
        validate_id(request.subtask_id, "subtask_id")
        if request.commit and not _COMMIT.match(request.commit):
            raise InvalidArgument(f"commit {request.commit[:80]!r} is not a commit id (40 or 64 hex digits)", field="commit")
        run = self.live(request.swarm_id)
        if run is None:
            raise NotFound(f"swarm {request.swarm_id!r} is not running in this orchestrator")
        return await claim_variant(run.id, run.states, run.scheduler.dispatches, request)

    # -- resume and shutdown ---------------------------------------------------------

    def owner(self) -> common_pb2.SwarmOwner:
        """This orchestrator as the owner recorded on the swarms it runs."""
        if not self._owner.address:
            source = self.ctx.address_source
            with contextlib.suppress(Exception):
                self._owner.address = self.ctx.orchestrator_address or (source() if source else "")
        return self._owner

    async def resume_unfinished(self) -> list[str]:
        """Resume or mark interrupted the swarms previous orchestrators left
        (see :mod:`.resume`); returns the ids resumed."""
        return await self.recovery.startup()

    def resume_when_serving(self, serving: Callable[[], bool], *, resume: bool = True) -> None:
        """Replay the journal, then (with ``resume``) :meth:`resume_unfinished`,
        in the background once ``serving()`` is true."""
        self.recovery.when_serving(serving, self._reapers, resume=resume)

    async def resume_swarm(
        self, request: orchestrator_pb2.ResumeSwarmRequest
    ) -> orchestrator_pb2.ResumeSwarmResponse:
        """Resume an INTERRUPTED swarm on purpose (``swarmd resume``)."""
        self._check_open()
        validate_id(request.swarm_id, "swarm_id")
        await self._load(request.swarm_id)
        run, already = await self.recovery.resume(request.swarm_id)
        return orchestrator_pb2.ResumeSwarmResponse(swarm=run.snapshot(), already_running=already)

    async def aclose(self) -> None:
        """Stop every live swarm without cancelling it (it is stored
        INTERRUPTED and stays resumable), close the governors and the journal
        (which keeps what the store has not confirmed), then the peer channels."""
        if self._closed:
            return
        self._closed = True
        runs = list(self._runs.values())
        await asyncio.gather(
            *(run.stop("its orchestrator was stopped") for run in runs), return_exceptions=True
        )
        for reaper in list(self._reapers):
            reaper.cancel()
        await asyncio.gather(*self._reapers, return_exceptions=True)
        self._runs.clear()
        with contextlib.suppress(Exception):
            await self.governor.aclose()
        if self.ctx.journal is not None:
            await self.ctx.journal.aclose()
        if self._on_close is not None:
            await self._on_close()
