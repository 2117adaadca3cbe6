"""Shared setup of the rate governor's tests: keys, outcomes, governors on virtual time."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from typing import Any

from swarmd.services.orchestrator.governor import (
    GovernorKey,
    GovernorRegistry,
    GovernorSettings,
    Permit,
    RateGovernor,
)
from swarmd.v1 import coordinator_pb2

__all__ = [
    "ABANDONED",
    "ERROR",
    "KEY",
    "OTHER",
    "RATE_LIMITED",
    "SUCCESS",
    "governor",
    "registry",
    "spawn",
]

SUCCESS = coordinator_pb2.CALL_OUTCOME_SUCCESS
RATE_LIMITED = coordinator_pb2.CALL_OUTCOME_RATE_LIMITED
ERROR = coordinator_pb2.CALL_OUTCOME_ERROR
ABANDONED = coordinator_pb2.CALL_OUTCOME_ABANDONED

KEY = GovernorKey("openai", "https://api.example.test/v1", "gpt-test", "0123456789ab")
OTHER = GovernorKey("openai", "https://api.example.test/v1", "gpt-other", "0123456789ab")


def governor(**settings: Any) -> RateGovernor:
    rng = settings.pop("rng", random.Random(1).random)
    wall_clock = settings.pop("wall_clock", None)
    settings.setdefault("slow_start", False)
    return RateGovernor(
        KEY,
        GovernorSettings(**settings),
        clock=asyncio.get_running_loop().time,
        rng=rng,
        wall_clock=wall_clock,
    )


def registry(**kwargs: Any) -> GovernorRegistry:
    kwargs.setdefault("rng", random.Random(1).random)
    kwargs.setdefault("slow_start", False)
    return GovernorRegistry(clock=asyncio.get_running_loop().time, **kwargs)


def spawn(coro: Coroutine[Any, Any, Permit]) -> asyncio.Task[Permit]:
    return asyncio.get_running_loop().create_task(coro)
