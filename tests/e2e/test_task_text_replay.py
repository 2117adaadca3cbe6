"""A task-text swarm through the CLI: decomposed by an OpenAI-compatible
server reached through ``--option provider.base_url``, recorded, priced,
then replayed offline from its cassette with the same plan and results.

The subtask ids of a model-made plan are derived from the plan (slugs of the
names), so the replay finds every sub-agent's recorded responses: cassettes
are keyed by subtask id.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from fakes.fake_openai_server import FakeOpenAIServer, agent_responder, reply_text
from test_separate_processes import SWARMD

pytestmark = pytest.mark.timeout(120)

TASK = "Survey the calculator and write notes about it"
PLAN = {
    "subtasks": [
        {"name": "Survey the code", "instruction": "List what is in the repository.", "specialty": "Researcher"},
        {
            "name": "Summarise findings",
            "instruction": "Summarise what the survey found.",
            "specialty": "Analyst",
            "dependencies": ["Survey the code"],
        },
    ]
}
PRICES = "orchestrator:\n  prices:\n    openai/fake-model: {prompt_per_mtok: 1000, completion_per_mtok: 2000}\n"


async def swarmd_run(cwd: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    env = {**os.environ, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}  # a dead port: never the real API
    env.pop("OPENAI_API_KEY", None)
    proc = await asyncio.create_subprocess_exec(
        SWARMD, "run", *args, "--json", "--request-delay-ms", "0", "--max-retries", "0",
        cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert out, err.decode()
    return proc.returncode or 0, json.loads(out), err.decode()


def outcome(swarm: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {
        s["subtask"]["id"]: (s["subtask"]["name"], s["status"], s["result"].get("result"), s["result"].get("steps"))
        for s in swarm["subtasks"]
    }


async def test_a_recorded_task_text_run_replays(tmp_path: Path, calc_repo: Path) -> None:
    twin = tmp_path / "calc-twin"
    shutil.copytree(calc_repo, twin, symlinks=True)
    cassette = tmp_path / "task.jsonl"
    settings = tmp_path / "swarmd.yaml"
    settings.write_text(PRICES)

    async with FakeOpenAIServer() as server:
        server.push(reply_text("```json\n" + json.dumps(PLAN) + "\n```", usage=(1000, 500)))
        server.fallback = agent_responder(usage=(10, 5))  # list ".", then "<id> done"
        code, recorded, err = await swarmd_run(
            tmp_path, TASK, "--model", "openai/fake-model", "--repo", str(calc_repo),
            "--option", f"provider.base_url={server.base_url}", "--record", str(cassette),
            "--config", str(settings),
        )
    assert code == 0, err
    assert recorded["state"] == "SWARM_STATE_SUCCEEDED"
    # The decomposition went to the configured base URL, not OPENAI_BASE_URL.
    assert "TASK: " + TASK in server.requests[0].json["messages"][0]["content"]
    assert server.completions == 1 + 2 + 2
    assert outcome(recorded) == {
        "survey-the-code": ("Survey the code", "SUB_TASK_STATUS_COMPLETED", "survey-the-code done", 2),
        "summarise-findings": ("Summarise findings", "SUB_TASK_STATUS_COMPLETED", "summarise-findings done", 2),
    }
    assert recorded["stats"]["critical_path"] == ["survey-the-code", "summarise-findings"]
    # Cost: the decomposition (1000 x $1e-3 + 500 x $2e-3 = $2) plus four
    # sub-agent calls (10 x $1e-3 + 5 x $2e-3 = $0.02 each).
    assert recorded["stats"]["cost_usd"] == pytest.approx(2.0 + 4 * 0.02)
    keys = sorted({json.loads(line)["key"] for line in cassette.read_text().splitlines()})
    assert keys == ["orchestrator", "summarise-findings", "survey-the-code"]

    # Offline, from the cassette alone.
    code, replayed, err = await swarmd_run(tmp_path, TASK, "--model", f"replay/{cassette}", "--repo", str(twin))
    assert code == 0, err
    assert outcome(replayed) == outcome(recorded)
