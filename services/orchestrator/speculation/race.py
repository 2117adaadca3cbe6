"""Racing the variants of one speculative subtask.

:class:`SpeculativeDispatch` stands in for a subtask's
:class:`~swarmd.services.orchestrator.dispatch.SubtaskDispatch` (same
``run``/``cancel``/``cancelling``/``attempts``) and runs one ordinary
dispatch per variant, concurrently: each has its own attempts, retries,
worktree and branch, and its own cancel path.

Who wins is decided when a variant's work is committed, before anything is
merged: its sub-agent calls ``ClaimVariant`` and :meth:`SpeculativeDispatch.claim`
answers. The first claim whose finished work passes the swarm's health
checks (run now, through the executor's ``SampleBranch``, on the variant's
worktree) wins; without checks the first claim does. A check that cannot
judge (UNKNOWN: a timeout, a worktree on another host) does not hold a
variant back, as it never kills a branch in the collapse controller. Only
the winner merges, so two variants finishing together never both land.

Once a variant won, the others still running are cancelled through their
dispatch's normal cancel path with reason ``speculative_loser: ...`` (their
worktrees and branches are kept, they end CANCELLED, not failed); a variant
that claims afterwards is told it lost and keeps its work on its branch. The
winner is never cancelled by the race. The subtask's result is the winner's
(its merge commit is what dependents start from; its ``WorkCommitted``
starts them early), with every variant's steps, tokens and cost added. When
no variant wins, the subtask fails with each variant's error. A winner
whose merge then conflicts fails the subtask: the others were stopped
already. While the race runs, the collapse controller judges the variants
as branches (:mod:`.judging`) and may kill one through :meth:`cancel_variant`.

A race resumed after its orchestrator went away (``ResumeSwarm``) keeps what
its variants had settled: one that had ended keeps its outcome and is not
run again; the others run again, each in a new attempt (the executor is told
to drop the interrupted ones, whose worktrees are kept; a later attempt's
claim names its branch). Once a winner had been decided, it alone runs
again -- its claim wins again -- and the variants still running are
cancelled as losers without running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TypeAlias

from swarmd.services.errors import InvalidArgument, NotFound, SwarmdError
from swarmd.services.orchestrator.attempts import (
    OWNED_KINDS,
    AttemptReporter,
    branch_name,
    build_request,
)
from swarmd.services.orchestrator.collapse.policy import CollapseSettings
from swarmd.services.orchestrator.dispatch import DispatchHooks, SubtaskDispatch
from swarmd.services.orchestrator.live_run import LiveRun
from swarmd.services.orchestrator.speculation.variants import (
    LOSER_REASON,
    model_of,
    parent_of,
    strategy_of,
    variant_id,
    variant_subtask,
)
from swarmd.v1 import common_pb2, coordinator_pb2, executor_pb2

__all__ = ["DispatchFactory", "Running", "SpeculativeDispatch", "claim_variant"]

log = logging.getLogger(__name__)

#: Makes the ordinary dispatch of one variant: (variant id, its hooks) -> dispatch.
DispatchFactory = Callable[[str, DispatchHooks], SubtaskDispatch]

#: Beyond the checks' own limits, what the SampleBranch call of a claim may take.
_RPC_SLACK_SECS = 30.0

#: A variant in one of these has ended: a resumed race does not run it again.
_ENDED = frozenset(
    {common_pb2.SUB_TASK_STATUS_COMPLETED, common_pb2.SUB_TASK_STATUS_FAILED, common_pb2.SUB_TASK_STATUS_CANCELLED}
)
_KINDS = {
    common_pb2.SUB_TASK_STATUS_FAILED: common_pb2.FAILURE_KIND_PERMANENT,
    common_pb2.SUB_TASK_STATUS_CANCELLED: common_pb2.FAILURE_KIND_CANCELLED,
}


def _add(total: common_pb2.SubTaskResult, part: common_pb2.SubTaskResult) -> None:
    total.steps += part.steps
    total.tool_calls += part.tool_calls
    for field in ("prompt_tokens", "completion_tokens", "total_tokens", "cache_read_tokens", "cache_write_tokens"):
        setattr(total.usage, field, getattr(total.usage, field) + getattr(part.usage, field))
    total.cost_usd += part.cost_usd


class _VariantHooks:
    """:class:`~swarmd.services.orchestrator.dispatch.DispatchHooks` of one variant.

    Its events go to the swarm's log under the variant's id; the subtask's
    own live state counts their steps and tool calls."""

    def __init__(self, race: SpeculativeDispatch, variant: int) -> None:
        self.race = race
        self.run = race.live
        self.variant = variant
        self.vid = variant_id(race.sid, variant)

    def build_request(self, attempt: int) -> executor_pb2.ExecuteSubTaskRequest:
        request = build_request(self.run, self.race.sid, attempt)
        request.subtask.CopyFrom(variant_subtask(request.subtask, self.variant))
        request.workspace.branch = branch_name(self.run.id, self.vid)
        request.config.model = self.race.variant_state(self.vid).model or request.config.model
        request.speculative.CopyFrom(
            executor_pb2.SpeculativeRun(
                subtask_id=self.race.sid, variant=self.variant, strategy=strategy_of(self.variant).name
            )
        )
        return request

    def budget_exhausted(self) -> str:
        return self.run.ledger.exhausted()

    def attempt_started(self, attempt: int) -> None:
        self.race.variant_state(self.vid).status = common_pb2.SUB_TASK_STATUS_RUNNING
        self.run.writer.save_subtask(self.race.state)

    def on_event(self, event: common_pb2.SwarmEvent) -> None:
        kind = event.WhichOneof("kind")
        if kind is None or kind in OWNED_KINDS:
            return
        state = self.race.state
        if kind == "agent_tool_call":
            state.current_tool = event.agent_tool_call.tool_name
            state.tool_calls += 1
        elif kind == "agent_step":
            state.steps += 1
        self.run.log.emit(kind, getattr(event, kind), time=event.time)
        if kind == "work_committed":
            self.race.variant_state(self.vid).commit = event.work_committed.commit
            if self.race.winner == self.vid:  # dependents may start from the winner's commit
                self.run.scheduler.work_committed(self.race.sid, event.work_committed)

    def attempt_failed(self, attempt: int, result: common_pb2.SubTaskResult, kind: common_pb2.FailureKind) -> None:
        self.run.log.emit(
            "agent_error",
            common_pb2.AgentError(subtask_id=self.vid, error=result.error or "unknown error", failure_kind=kind),
        )

    def retry_scheduled(self, next_attempt: int, delay_ms: float, reason: str) -> None:
        self.run.log.emit(
            "retry_scheduled",
            common_pb2.RetryScheduled(subtask_id=self.vid, next_attempt=next_attempt, delay_ms=int(delay_ms), reason=reason),
        )

    def on_notice(self, code: str, message: str) -> None:
        self.run.log.emit("warning", common_pb2.SwarmWarning(code=code, message=message, subtask_id=self.vid))


class SpeculativeDispatch:
    """All variants of one subtask; ``await run()`` returns the subtask's result."""

    def __init__(
        self, run: LiveRun, reporter: AttemptReporter, sid: str, count: int, make_dispatch: DispatchFactory
    ) -> None:
        self.live = run
        self.sid = sid
        self.winner = ""
        self.cancel_reason = ""
        self._reporter = reporter
        self._cancelled = False
        self._losers: dict[str, str] = {}
        self._hooks = {h.vid: h for h in (_VariantHooks(self, n) for n in range(1, count + 1))}
        self._dispatches = {vid: make_dispatch(vid, hooks) for vid, hooks in self._hooks.items()}
        self._results: dict[str, common_pb2.SubTaskResult] = {}
        state = self.state
        # A resumed race keeps what its variants had settled (see _resume);
        # the scheduler clears the variants of a race run again from scratch.
        kept = {v.subtask_id: v for v in state.variants if v.winner or v.status in _ENDED}
        fresh = []
        for vid, hooks in self._hooks.items():
            old = kept.get(vid)
            if old is None:
                old = common_pb2.SpeculativeVariant(
                    variant=hooks.variant,
                    subtask_id=vid,
                    strategy=strategy_of(hooks.variant).name,
                    branch=branch_name(run.id, vid),
                    status=common_pb2.SUB_TASK_STATUS_PENDING,
                    model=model_of(run.config, hooks.variant),
                )
            fresh.append(old)
        copies = [common_pb2.SpeculativeVariant() for _ in fresh]
        for copy, variant in zip(copies, fresh, strict=True):
            copy.CopyFrom(variant)
        del state.variants[:]
        state.variants.extend(copies)
        self._resume()

    def _resume(self) -> None:
        """What a resumed race keeps: a variant that had ended keeps its
        outcome and is not run again (its work is on its branch); once a
        winner was decided, it alone runs again (its claim wins again) and
        the variants still running then are cancelled as losers unrun."""
        winner = next((v for v in self.state.variants if v.winner), None)
        self.winner = winner.subtask_id if winner is not None else ""
        for variant in self.state.variants:
            vid = variant.subtask_id
            if vid != self.winner and variant.status not in _ENDED and winner is not None:
                variant.status = common_pb2.SUB_TASK_STATUS_CANCELLED
                variant.reason = f"{LOSER_REASON}: variant {winner.variant} ({winner.strategy}) won"
                self._losers[vid] = variant.reason
            if variant.status in _ENDED:
                self._results[vid] = common_pb2.SubTaskResult(
                    subtask_id=vid,
                    success=variant.status == common_pb2.SUB_TASK_STATUS_COMPLETED,
                    status=variant.status,
                    failure_kind=_KINDS.get(variant.status, common_pb2.FAILURE_KIND_UNSPECIFIED),
                    error=variant.reason,
                    merge=common_pb2.MergeResult(branch=variant.branch, commit=variant.commit),
                )

    @property
    def state(self) -> common_pb2.SubTaskState:
        return self.live.states[self.sid]

    def variant_state(self, vid: str) -> common_pb2.SpeculativeVariant:
        return next(v for v in self.state.variants if v.subtask_id == vid)

    @property
    def attempts(self) -> int:
        return sum(d.attempts for d in self._dispatches.values())

    @property
    def cancelling(self) -> bool:
        return self._cancelled

    def judgeable_variants(self) -> list[str]:
        """Variants the collapse controller may judge: running, not stopping,
        their work not committed (claiming or won)."""
        if self._cancelled or self.winner:
            return []
        return [
            vid
            for vid, dispatch in self._dispatches.items()
            if vid not in self._results and not dispatch.cancelling and not self.variant_state(vid).commit
        ]

    def cancel_variant(self, vid: str, reason: str) -> bool:
        """Stop one variant (the collapse controller killed it); the race goes
        on without it. False when it is the winner or has ended."""
        dispatch = self._dispatches.get(vid)
        if dispatch is None or vid == self.winner or vid in self._results:
            return False
        dispatch.cancel(reason)
        return True

    def cancel(self, reason: str) -> None:
        """Stop every variant (idempotent; the first reason wins). The winner
        is stopped too: the subtask itself is being cancelled."""
        if self._cancelled:
            return
        self._cancelled = True
        self.cancel_reason = reason or "cancelled"
        for dispatch in self._dispatches.values():
            dispatch.cancel(self.cancel_reason)

    # -- the race -----------------------------------------------------------

    async def run(self) -> common_pb2.SubTaskResult:
        self._reporter.attempt_started(1)
        running = {vid: d for vid, d in self._dispatches.items() if vid not in self._results}
        await asyncio.gather(*(self._run_variant(vid, d) for vid, d in running.items()))
        return self._outcome()

    async def _run_variant(self, vid: str, dispatch: SubtaskDispatch) -> None:
        try:
            result = await dispatch.run()
        except Exception as exc:  # a bug ends this variant, not the race
            log.exception("swarm %s: variant %s crashed", self.live.id, vid)
            result = common_pb2.SubTaskResult(
                success=False,
                status=common_pb2.SUB_TASK_STATUS_FAILED,
                failure_kind=common_pb2.FAILURE_KIND_PERMANENT,
                error=f"internal error while dispatching: {type(exc).__name__}: {exc}",
            )
        if result.success and not self.winner and not self._cancelled:
            # Its executor merged without claiming (one that does not run the
            # swarmd runtime): the work landed, so it is the winner.
            self._win(vid, result.merge.commit, "finished without claiming the race")
        elif result.success and self.winner and self.winner != vid:
            self._losers.setdefault(vid, f"{LOSER_REASON}: finished after variant {self.winner} won, without claiming")
        self._results[vid] = result
        variant = self.variant_state(vid)
        variant.status = result.status
        variant.reason = self._losers.get(vid) or result.error
        variant.commit = result.merge.commit or variant.commit
        if vid in self._losers and result.status == common_pb2.SUB_TASK_STATUS_FAILED:
            variant.status = common_pb2.SUB_TASK_STATUS_CANCELLED  # stopped mid-way, not failed by its agent
        self.live.log.emit(
            "agent_complete", common_pb2.AgentComplete(subtask_id=vid, success=result.success, steps=result.steps)
        )
        self.live.writer.save_subtask(self.state)

    def _outcome(self) -> common_pb2.SubTaskResult:
        final = common_pb2.SubTaskResult()
        won = self._results.get(self.winner)
        if won is not None:
            final.CopyFrom(won)
            final.steps = final.tool_calls = 0  # every variant's figures are added below
            final.cost_usd = 0.0
            final.usage.Clear()
        elif self._cancelled:
            final.status = common_pb2.SUB_TASK_STATUS_CANCELLED
            final.failure_kind = common_pb2.FAILURE_KIND_CANCELLED
            final.error = f"cancelled: {self.cancel_reason}"
        else:
            errors = "; ".join(
                f"variant {v.variant} ({v.strategy}): {v.reason or 'no result'}" for v in self.state.variants
            )
            final.status = common_pb2.SUB_TASK_STATUS_FAILED
            final.failure_kind = common_pb2.FAILURE_KIND_PERMANENT
            final.error = f"every variant failed: {errors}"
        for result in self._results.values():
            _add(final, result)
        final.subtask_id = self.sid
        ran = sum(1 for d in self._dispatches.values() if d.attempts)
        final.retry_count = max(0, self.attempts - ran)
        return final

    # -- claims -----------------------------------------------------------------

    def _answer(self, outcome: coordinator_pb2.ClaimOutcome, detail: str = "") -> coordinator_pb2.ClaimVariantResponse:
        return coordinator_pb2.ClaimVariantResponse(outcome=outcome, detail=detail, winner_subtask_id=self.winner)

    def _lost(self) -> coordinator_pb2.ClaimVariantResponse | None:
        if self.winner:
            return self._answer(coordinator_pb2.CLAIM_OUTCOME_LOST, f"{LOSER_REASON}: variant {self.winner} won")
        if self._cancelled:
            return self._answer(coordinator_pb2.CLAIM_OUTCOME_LOST, f"the subtask is cancelled: {self.cancel_reason}")
        return None

    async def claim(self, vid: str, commit: str, branch: str = "") -> coordinator_pb2.ClaimVariantResponse:
        """Decide whether variant ``vid``, its work committed as ``commit`` on
        ``branch`` ("" its first branch), wins."""
        if vid not in self._dispatches:
            raise NotFound(f"swarm {self.live.id!r}: {vid!r} is not a variant of subtask {self.sid!r}")
        if branch:
            own = branch_name(self.live.id, vid)
            attempt = branch.removeprefix(f"{own}@")
            if branch != own and (attempt == branch or not attempt.isdigit()):
                raise InvalidArgument(
                    f"branch {branch[:200]!r} is not a branch of variant {vid!r} ({own} or {own}@<n>)", field="branch"
                )
            self.variant_state(vid).branch = branch  # a later attempt's: its worktree is the one checked
        if self.winner == vid:  # asked again (a retried RPC): the same answer
            return self._answer(coordinator_pb2.CLAIM_OUTCOME_WON)
        lost = self._lost()
        if lost is not None:
            return lost
        self.variant_state(vid).commit = commit
        health, detail = await self._check(vid)
        lost = self._lost()
        if lost is not None:
            return lost
        if health == common_pb2.HEALTH_STATUS_FAIL:
            return self._answer(
                coordinator_pb2.CLAIM_OUTCOME_CHECKS_FAILED, f"the health checks failed on the finished work: {detail}"
            )
        self._win(vid, commit, detail)
        return self._answer(coordinator_pb2.CLAIM_OUTCOME_WON, detail)

    def _win(self, vid: str, commit: str, detail: str) -> None:
        self.winner = vid
        winner = self.variant_state(vid)
        winner.winner = True
        reason = f"{LOSER_REASON}: variant {winner.variant} ({winner.strategy}) won"
        losers = []
        for other, dispatch in self._dispatches.items():
            if other == vid or other in self._results:
                continue  # the winner, or a variant that already ended on its own
            self._losers[other] = reason
            losers.append(other)
            dispatch.cancel(reason)
        log.info("swarm %s: variant %s of %s won; cancelling %s", self.live.id, vid, self.sid, losers)
        self.live.log.emit(
            "speculation_decided",
            common_pb2.SpeculationDecided(
                subtask_id=self.sid,
                winner_subtask_id=vid,
                branch=winner.branch,
                commit=commit,
                detail=detail,
                loser_subtask_ids=losers,
            ),
        )
        self.live.writer.save_subtask(self.state)

    async def _check(self, vid: str) -> tuple[int, str]:
        """The swarm's health checks on the variant's worktree (PASS without checks)."""
        config = self.live.config
        if not config.collapse.enabled or not config.collapse.checks:
            return common_pb2.HEALTH_STATUS_PASS, ""
        settings = CollapseSettings.from_proto(config.collapse)
        request = executor_pb2.SampleBranchRequest(
            swarm_id=self.live.id,
            subtask_id=vid,
            repo_path=config.repo_path,
            branch=self.variant_state(vid).branch,
            base_commit=self.live.swarm.base_commit,
            checks=list(config.collapse.checks),
            check_timeout_ms=int(settings.check_timeout_secs * 1000),
        )
        timeout = settings.check_timeout_secs * len(request.checks) + _RPC_SLACK_SECS
        try:
            response = await self.live.ctx.executor.sample_branch(request, timeout)
        except SwarmdError as exc:
            log.warning("swarm %s: the checks of %s could not run: %s", self.live.id, vid, exc)
            return common_pb2.HEALTH_STATUS_UNKNOWN, f"the checks could not run: {exc}"
        return response.observation.health, response.observation.detail


#: What runs one subtask: an ordinary dispatch, or the race of its variants.
Running: TypeAlias = SubtaskDispatch | SpeculativeDispatch


async def claim_variant(
    swarm_id: str,
    states: Mapping[str, common_pb2.SubTaskState],
    dispatches: Mapping[str, object],
    request: coordinator_pb2.ClaimVariantRequest,
) -> coordinator_pb2.ClaimVariantResponse:
    """Answer ClaimVariant for one live swarm (its states and running dispatches)."""
    found = parent_of(states, request.subtask_id)
    race = dispatches.get(found[0]) if found is not None else None
    if not isinstance(race, SpeculativeDispatch):
        raise NotFound(f"swarm {swarm_id!r} has no running speculative variant {request.subtask_id!r}")
    return await race.claim(request.subtask_id, request.commit, request.branch)
