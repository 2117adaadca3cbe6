"""What every swarm run shares, and the sets of terminal statuses."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from swarmd.services.auth.subagent import SubagentTokens
from swarmd.services.config import OrchestratorSettings
from swarmd.services.orchestrator.journal import Journal
from swarmd.services.orchestrator.peers import ExecutorClient, StoreClient
from swarmd.v1 import common_pb2

__all__ = ["TERMINAL", "TERMINAL_SWARM", "RunContext"]

#: Subtask statuses that never change again.
TERMINAL = frozenset(
    {
        common_pb2.SUB_TASK_STATUS_COMPLETED,
        common_pb2.SUB_TASK_STATUS_FAILED,
        common_pb2.SUB_TASK_STATUS_CANCELLED,
        common_pb2.SUB_TASK_STATUS_TIMED_OUT,
        common_pb2.SUB_TASK_STATUS_SKIPPED,
    }
)
#: Swarm states that never change again.
TERMINAL_SWARM = frozenset(
    {
        common_pb2.SWARM_STATE_SUCCEEDED,
        common_pb2.SWARM_STATE_FAILED,
        common_pb2.SWARM_STATE_CANCELLED,
    }
)


@dataclass
class RunContext:
    """Peers, settings and knobs shared by every swarm run (owned by the orchestrator)."""

    store: StoreClient
    executor: ExecutorClient
    settings: OrchestratorSettings
    orchestrator_address: str
    tracer: trace.Tracer
    #: The GovernorRegistry (rate-limit statistics per swarm).
    governor: Any = None
    rng: random.Random = field(default_factory=random.Random)
    #: Sleep used for retry backoff (tests inject one that records delays).
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    #: How long a cancelled attempt may take to deliver its final result.
    cancel_grace_secs: float = 2.0
    #: How long the end of a run (or a shutdown) waits for the store.
    flush_timeout_secs: float = 5.0
    #: Where the orchestrator's address comes from when it is only known once
    #: the server is bound (no advertise_address configured).
    address_source: Callable[[], str] | None = None
    #: The write-ahead journal of what the store has not confirmed (None: none kept).
    journal: Journal | None = None
    #: Mints each attempt's subagent token (None: the services do not authenticate).
    subagent_tokens: SubagentTokens | None = None

    def address(self) -> str:
        """The address executors use to reach this orchestrator."""
        if self.orchestrator_address:
            return self.orchestrator_address
        return self.address_source() if self.address_source is not None else ""
