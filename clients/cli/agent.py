"""``swarmd agent run-subtask``: the entrypoint of a sub-agent pod.

It is what the ``kubernetes`` executor's pods run; everything it needs is
named by the pod's environment (see :mod:`swarmd.plugins.executors.kubernetes.agent`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_agent_arguments", "cmd_agent"]


def add_agent_arguments(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    agent = sub.add_parser("agent", help="inside a sub-agent pod: run the subtask the pod was made for")
    agent.add_argument("action", choices=("run-subtask",))
    agent.add_argument("--workspace", default="/workspace", help="writable directory for the repository (default /workspace)")


async def cmd_agent(args: argparse.Namespace) -> int:
    # Imported here: the Kubernetes client is slow to import and only pods need it.
    from swarmd.plugins.executors.kubernetes.agent import run_subtask

    return await run_subtask(Path(args.workspace))
