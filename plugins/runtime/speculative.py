"""A speculative variant asks whether it won before it merges.

An attempt whose request has ``speculative`` set is one variant of a subtask
raced against others (``SubTask.speculate``). Once its work is committed,
:func:`~swarmd.plugins.runtime.wrapup.merge_back` calls the
:class:`VariantClaim` of this module, which asks the orchestrator
(``ClaimVariant``); the orchestrator runs the swarm's health checks on the
committed work and answers. Only a variant that won merges; one that lost
(another won first) keeps its work on its branch and ends CANCELLED; one
whose checks failed keeps it there too and ends FAILED with the checks'
detail. A claim that cannot be made (no orchestrator, the call failed)
merges nothing either: merging without the orchestrator's word could land
two variants of one subtask.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from swarmd.plugins.runtime.channels import ChannelPool
from swarmd.plugins.runtime.loop import OutcomeKind
from swarmd.v1 import common_pb2, coordinator_pb2, coordinator_pb2_grpc, executor_pb2

__all__ = ["Verdict", "VariantClaim", "keep_unmerged", "variant_claim"]

log = logging.getLogger(__name__)

#: What a claim may take beyond the checks it makes the orchestrator run.
_SLACK_SECS = 60.0
#: The orchestrator's default check timeout (``CollapseConfig.check_timeout_ms`` 0).
_DEFAULT_CHECK_SECS = 120.0


@dataclass(frozen=True)
class Verdict:
    """The orchestrator's answer to one claim."""

    won: bool
    #: Another variant won (or the subtask is cancelled): the attempt ends CANCELLED.
    lost: bool
    detail: str


class VariantClaim:
    """Claims the race for one variant attempt: ``await claim(commit)``."""

    def __init__(self, channel: grpc.aio.Channel | None, request: executor_pb2.ExecuteSubTaskRequest) -> None:
        self._stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel) if channel is not None else None
        self._swarm_id = request.swarm_id
        self._subtask_id = request.subtask.id
        collapse = request.config.collapse
        checks = len(collapse.checks) if collapse.enabled else 0
        self.timeout = checks * (collapse.check_timeout_ms / 1000 or _DEFAULT_CHECK_SECS) + _SLACK_SECS

    async def __call__(self, commit: str, branch: str = "") -> Verdict:
        if self._stub is None:
            return Verdict(False, False, "not merged: no orchestrator address to claim the race from")
        request = coordinator_pb2.ClaimVariantRequest(
            swarm_id=self._swarm_id, subtask_id=self._subtask_id, commit=commit, branch=branch
        )
        try:
            response = await self._stub.ClaimVariant(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("variant %s could not claim its race: %s", self._subtask_id, exc.details())
            return Verdict(False, False, f"not merged: claiming the race failed: {exc.code().name}: {exc.details()}")
        if response.outcome == coordinator_pb2.CLAIM_OUTCOME_WON:
            return Verdict(True, False, response.detail)
        return Verdict(False, response.outcome == coordinator_pb2.CLAIM_OUTCOME_LOST, response.detail)


def variant_claim(request: executor_pb2.ExecuteSubTaskRequest, channels: ChannelPool) -> VariantClaim | None:
    """The claim of a variant attempt (None for any other attempt)."""
    if not request.HasField("speculative"):
        return None
    address = request.orchestrator_address
    return VariantClaim(channels.get(address) if address else None, request)


def keep_unmerged(finish: Any, worktree: Any, commit: str | None, verdict: Verdict) -> None:
    """A variant that did not win: its work stays on its branch and worktree, unmerged."""
    commit = commit or ""
    where = f"branch {worktree.branch}" + (f" ({commit[:12]})" if commit else "")
    finish.merge = common_pb2.MergeResult(
        outcome=common_pb2.MERGE_OUTCOME_KEPT,
        branch=str(worktree.branch),
        commit=commit,
        summary=f"{verdict.detail}; the work stays on {where}",
    )
    finish.worktree_path = str(Path(worktree.path))
    finish.outcome.error = verdict.detail
    if verdict.lost:
        finish.outcome.kind = OutcomeKind.CANCELLED
        finish.outcome.failure_kind = common_pb2.FAILURE_KIND_CANCELLED
        finish.status = common_pb2.SUB_TASK_STATUS_CANCELLED
    else:
        finish.outcome.kind = OutcomeKind.FAILED
        finish.outcome.failure_kind = common_pb2.FAILURE_KIND_PERMANENT
        finish.status = common_pb2.SUB_TASK_STATUS_FAILED
