"""End to end with the real pieces: the local executor, the replay provider,
git worktrees and merges, the result store, all over loopback gRPC."""

from __future__ import annotations

import json
from pathlib import Path

from fakes.swarm_services import serve_swarm_services, wait_terminal
from helpers import git

from swarmd.v1 import common_pb2


def cassette(path: Path, *entries: dict) -> Path:  # type: ignore[type-arg]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


async def test_decomposed_swarm_writes_merges_and_reviews(tmp_path: Path, git_repo: Path) -> None:
    plan = {
        "subtasks": [
            {
                "id": "writer",
                "name": "writer",
                "instruction": "Create notes.txt",
                "specialty": "Coder",
            },
            {
                "id": "reviewer",
                "name": "reviewer",
                "instruction": "Review notes.txt",
                "specialty": "Reviewer",
                "dependencies": ["writer"],
            },
        ]
    }
    tape = cassette(
        tmp_path / "demo.jsonl",
        {
            "key": "orchestrator",
            "step": 1,
            "content": "Here you go:\n```json\n" + json.dumps(plan) + "\n```",
        },
        {
            "key": "writer",
            "step": 1,
            "content": "Writing.",
            "tool_calls": [
                {"name": "write", "arguments": {"path": "notes.txt", "content": "hello\n"}}
            ],
        },
        {"key": "writer", "step": 2, "content": "Wrote notes.txt"},
        {"key": "reviewer", "step": 1, "content": "Looks fine."},
    )
    async with serve_swarm_services(tmp_path, builtins=True) as services:
        reply = await services.submit(
            task="Write notes and review them",
            config=common_pb2.SwarmConfig(
                model=f"replay/{tape}",
                repo_path=str(git_repo),
                request_delay_ms=0,
                executor="local",  # the test services' default executor is "fake"
            ),
        )
        swarm = await wait_terminal(services, reply.swarm.id, timeout=40)
        assert swarm.state == common_pb2.SWARM_STATE_SUCCEEDED, swarm.result
        writer, reviewer = swarm.subtasks
        assert not writer.subtask.read_only and reviewer.subtask.read_only
        assert writer.result.merge.outcome == common_pb2.MERGE_OUTCOME_MERGED
        assert writer.result.merge.branch == f"swarmd/{swarm.id}/writer"
        assert (git_repo / "notes.txt").read_text() == "hello\n"
        assert "notes.txt" in git(git_repo, "log", "--stat", "-1", "HEAD^2")
        assert "=== Subtask 2: reviewer [Reviewer] ===\nLooks fine." in swarm.result
        assert swarm.stats.orchestrator_steps == 1 and swarm.stats.total_tool_calls == 1
        assert swarm.stats.critical_steps == 1 + 2 + 1
        events = await services.events(swarm.id)
        kinds = [e.WhichOneof("kind") for e in events]
        assert kinds[:2] == ["started", "decomposed"] and kinds[-1] == "complete"
        assert "merge_completed" in kinds and "agent_tool_call" in kinds
        for kind in ("agent_output", "agent_complete", "agent_started"):
            assert kinds.count(kind) == 2, kind  # derived once per attempt, never duplicated
