"""The embedded end-to-end path: a plan through three real gRPC services."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from helpers import git
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from swarmd.clients.client import SwarmdClient
from swarmd.clients.errors import SwarmdClientError
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.clients.plan_files import load_plan
from swarmd.v1 import common_pb2

pytestmark = pytest.mark.timeout(120)


def config(repo: Path, model: str, **kw) -> common_pb2.SwarmConfig:  # type: ignore[no-untyped-def]
    return common_pb2.SwarmConfig(model=model, repo_path=str(repo), request_delay_ms=0, **kw)


async def run_plan(embedded: EmbeddedSwarmd, plan_path: Path, repo: Path, model: str, **kw):  # type: ignore[no-untyped-def]
    plan, task = load_plan(plan_path)
    async with SwarmdClient(embedded.orchestrator_address) as client:
        reply = await client.submit(task=task, plan=plan, config=config(repo, model, **kw))
        events = [e async for e in client.watch(reply.swarm.id)]
        swarm = await client.get(reply.swarm.id)
    return swarm, events


async def test_plan_runs_end_to_end(tmp_path: Path, calc_repo: Path, demo_plan: Path, demo_model: str) -> None:
    exporter = InMemorySpanExporter()
    async with EmbeddedSwarmd(db_path=tmp_path / "db.sqlite", span_processors=[SimpleSpanProcessor(exporter)]) as emb:
        swarm, events = await run_plan(emb, demo_plan, calc_repo, demo_model)

    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, swarm.error
    assert {s.subtask.id: s.status for s in swarm.subtasks} == dict.fromkeys(
        ["ops", "parser", "cli", "review", "docs"], common_pb2.SUB_TASK_STATUS_COMPLETED
    )
    # Every mutating sub-agent's work is on main; the read-only one changed nothing.
    tree = git(calc_repo, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert {"src/calc/ops.py", "src/calc/parser.py", "src/calc/cli.py"} <= set(tree)
    assert "## Usage" in (calc_repo / "README.md").read_text()
    merges = [m for m in git(calc_repo, "log", "--merges", "--format=%s").splitlines() if m.endswith("into main")]
    assert len(merges) == 4

    # Events: dense sequence numbers, the catalogue's milestones in order.
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    kinds = [e.WhichOneof("kind") for e in events]
    assert kinds[0] in ("started", "decomposed") and kinds[-1] == "complete"
    assert kinds.count("agent_started") == 5 and kinds.count("merge_completed") == 4
    # cli started only once both of its dependencies had committed their work
    # (not necessarily merged it), and merged only after both had merged.
    kinds_seen = ("agent_started", "work_committed", "merge_completed")
    seq = {(e.WhichOneof("kind"), getattr(e, e.WhichOneof("kind")).subtask_id): e.sequence
           for e in events if e.WhichOneof("kind") in kinds_seen}
    for dep in ("ops", "parser"):
        assert seq[("agent_started", "cli")] > seq[("work_committed", dep)]
        assert seq[("merge_completed", "cli")] > seq[("merge_completed", dep)]

    stats = swarm.stats
    assert stats.subagents_completed == 5 and stats.subagents_failed == 0
    assert stats.total_tool_calls == 13 and stats.total_steps >= 15
    assert list(stats.critical_path) == ["ops", "cli", "docs"]
    assert stats.critical_path_length == 3 + 4 + 3 or stats.critical_path_length > 0
    assert "=== Subtask" in swarm.result

    # One trace across the three services.
    spans = exporter.get_finished_spans()
    services = {s.resource.attributes["service.name"] for s in spans}
    assert services == {"swarmd-orchestrator", "swarmd-executor", "swarmd-result-store"}
    exec_spans = [s for s in spans if s.name == "/swarmd.v1.ExecutorService/ExecuteSubTask"]
    assert exec_spans
    trace_ids = {s.context.trace_id for s in exec_spans}
    assert len(trace_ids) == 1, "every subtask dispatch belongs to the swarm's trace"
    trace_id = trace_ids.pop()
    in_trace = {s.resource.attributes["service.name"] for s in spans if s.context.trace_id == trace_id}
    assert in_trace == {"swarmd-orchestrator", "swarmd-executor", "swarmd-result-store"}
    names = {s.name for s in spans if s.context.trace_id == trace_id}
    assert {"swarmd.swarm", "swarmd.subtask", "swarmd.model.complete", "swarmd.tool write"} <= names
    swarm_span = next(s for s in spans if s.name == "swarmd.swarm")
    critical = [s for s in spans if s.name == "swarmd.subtask" and s.attributes.get("swarmd.critical_path")]
    assert critical and all(s.context.trace_id == swarm_span.context.trace_id for s in critical)


async def test_same_swarm_again_hits_the_cache(tmp_path: Path, calc_repo: Path, demo_plan: Path, demo_model: str) -> None:
    start = git(calc_repo, "rev-parse", "HEAD").strip()
    async with EmbeddedSwarmd(db_path=tmp_path / "db.sqlite") as emb:
        first, _ = await run_plan(emb, demo_plan, calc_repo, demo_model)
        assert first.state == common_pb2.SWARM_STATE_SUCCEEDED
        first_tree = git(calc_repo, "rev-parse", "HEAD^{tree}").strip()
        assert first.stats.cache.misses == 5 and first.stats.cache.hits == 0

        git(calc_repo, "reset", "-q", "--hard", start)
        second, events = await run_plan(emb, demo_plan, calc_repo, demo_model)
        assert second.state == common_pb2.SWARM_STATE_SUCCEEDED, second.error
        assert second.stats.cache.hits == 5 and second.stats.cache.misses == 0
        assert not [e for e in events if e.WhichOneof("kind") == "agent_step"], "no model call on a full hit"
        assert git(calc_repo, "rev-parse", "HEAD^{tree}").strip() == first_tree

        # A changed repository misses (for the subtasks whose base changed).
        git(calc_repo, "reset", "-q", "--hard", start)
        (calc_repo / "src" / "calc" / "__init__.py").write_text('"""A changed calculator."""\n')
        git(calc_repo, "commit", "-q", "-am", "change")
        third, _ = await run_plan(emb, demo_plan, calc_repo, demo_model)
        assert third.state == common_pb2.SWARM_STATE_SUCCEEDED, third.error
        assert third.stats.cache.hits == 0 and third.stats.cache.misses == 5


async def test_no_cache_flag(tmp_path: Path, calc_repo: Path, demo_plan: Path, demo_model: str) -> None:
    async with EmbeddedSwarmd(db_path=tmp_path / "db.sqlite") as emb:
        swarm, _ = await run_plan(emb, demo_plan, calc_repo, demo_model, cache_enabled=False)
    assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
    assert swarm.stats.cache.hits == 0 and swarm.stats.cache.misses == 0


@pytest.mark.parametrize(
    ("subtasks", "task", "needle"),
    [
        ([{"id": "a", "instruction": "x", "dependencies": ["ghost"]}], "", "ghost"),
        ([{"id": "a", "instruction": ""}], "", "a"),
        ([{"id": "a", "instruction": "x", "dependencies": ["b"]}, {"id": "b", "instruction": "y", "dependencies": ["a"]}], "", "a -> b -> a"),
        ([{"id": "a", "instruction": "x"}, {"id": "a", "instruction": "y"}], "", "duplicate"),
        ([{"id": "a", "instruction": "x" * 100_001}], "", "a"),
        ([], "", "task"),
    ],
)
async def test_bad_plans_are_invalid_argument(
    tmp_path: Path, calc_repo: Path, subtasks: list[dict[str, object]], task: str, needle: str
) -> None:
    plan = common_pb2.Plan(subtasks=[common_pb2.SubTask(**s) for s in subtasks])  # type: ignore[arg-type]
    async with EmbeddedSwarmd(db_path=tmp_path / "db.sqlite") as emb, SwarmdClient(emb.orchestrator_address) as client:
        with pytest.raises(SwarmdClientError) as info:
            await client.submit(task=task, plan=plan, config=config(calc_repo, "replay/none.jsonl"))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in info.value.message.lower()


async def test_unknown_executor_is_invalid_argument(tmp_path: Path, calc_repo: Path) -> None:
    plan = common_pb2.Plan(subtasks=[common_pb2.SubTask(id="a", instruction="x")])
    async with EmbeddedSwarmd(db_path=tmp_path / "db.sqlite") as emb, SwarmdClient(emb.orchestrator_address) as client:
        with pytest.raises(SwarmdClientError) as info:
            await client.submit(plan=plan, config=config(calc_repo, "replay/x.jsonl", executor="warp-drive"))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "warp-drive" in info.value.message
