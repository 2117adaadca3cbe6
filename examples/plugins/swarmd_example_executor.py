"""Example executor plugin: the ``local`` executor with a per-swarm budget of subtasks.

It reuses :class:`~swarmd.plugins.executors.local.LocalExecutor` (sub-agents
as asyncio tasks) and refuses, with a failed result, every subtask of a swarm
beyond the ``quota_subtasks`` executor option (default 50).
Select it with ``--executor quota``; load it with
``SWARMD_PLUGINS=swarmd_example_executor`` or install this folder.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

from swarmd.plugins import ExecutorContext, hookimpl
from swarmd.plugins.executor import unfinished_result
from swarmd.plugins.executors.local import LocalExecutor
from swarmd.v1 import common_pb2, executor_pb2


class QuotaExecutor(LocalExecutor):
    """``local`` with at most ``quota_subtasks`` subtasks per swarm."""

    name = "quota"
    description = "the local executor with a per-swarm subtask quota"

    def __init__(self, context: ExecutorContext) -> None:
        super().__init__(context)
        # Constructor errors fail the first request for this executor with
        # FAILED_PRECONDITION naming the plugin: check options here.
        self.quota = int(context.options.get("quota_subtasks", "50"))
        if self.quota < 1:
            raise ValueError(f"quota_subtasks must be at least 1, got {self.quota}")
        self._seen: Counter[str] = Counter()

    async def submit(
        self, request: executor_pb2.ExecuteSubTaskRequest
    ) -> AsyncIterator[executor_pb2.ExecuteSubTaskResponse]:
        if request.attempt <= 1:
            self._seen[request.swarm_id] += 1
        if self._seen[request.swarm_id] > self.quota:
            # A refusal is a failed result, not an exception: exactly one result, then return.
            yield unfinished_result(
                request,
                f"swarm {request.swarm_id} is over its quota of {self.quota} subtasks",
                kind=common_pb2.FAILURE_KIND_PERMANENT,
            )
            return
        async for message in super().submit(request):
            yield message


@hookimpl
def swarmd_register_executors(registry: object) -> None:
    registry.add(QuotaExecutor)  # type: ignore[attr-defined]
