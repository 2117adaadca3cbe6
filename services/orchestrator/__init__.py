"""swarmd.services.orchestrator: the orchestrator service.

It turns a task (decomposed by a model) or an explicit plan into a running
swarm, dispatches each subtask to the executor service the moment its
dependencies have succeeded, keeps budgets and the swarm-wide rate governor,
persists state and events in the result store, and streams events to
watchers. It never runs an agent loop itself.

Modules, roughly in the order a swarm meets them:

=================  ==========================================================
submission         everything checked before a swarm is accepted
swarm_config       the effective SwarmConfig (defaults filled in)
planning           strategies (``parse_strategy``), the decomposition prompt,
                   read-only classification
decomposer         the decomposition model call
model_plan         reading the model's plan robustly, with warnings
validation         strict checks of explicit plans, repairs of model plans,
                   stages and other graph helpers
preflight          workspace, configuration and token pre-flight report
run                one swarm from plan to result
scheduler          dependency-driven dispatch order, start stagger
scheduling         the dispatch loop, running subtasks, cancellation
attempts           the request of each attempt, and its events
dispatch           one subtask's attempts: retries, timeout, cancellation
retry              the transient-failure classifier and jittered backoff
budgets            tool-call, token and cost budgets
spending           the permit and budget RPCs
events             event numbering, batched persistence, watchers
persistence        ordered, coalesced saves of swarm state
journal            the local write-ahead journal of what the store has not
                   confirmed; journal_replay sends it to the store on start
stats              statistics, critical paths, the aggregated result
resume             swarm owners; interrupted swarms, resumed on purpose or on restart
orchestrator       all swarms: submit, get, list, watch, cancel
servicer           the gRPC servicer
context, peers     what runs share; clients of the store and the executor
governor           the adaptive rate governor (AIMD, headers, pauses)
=================  ==========================================================
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from swarmd.plugins.executors.follow import FollowPolicy
from swarmd.plugins.manager import Plugins
from swarmd.services._host import ServiceHost
from swarmd.services.auth.subagent import SubagentTokens, read_key
from swarmd.services.config import OrchestratorSettings
from swarmd.services.errors import InvalidArgument
from swarmd.services.orchestrator.journal import Journal
from swarmd.services.orchestrator.orchestrator import Orchestrator
from swarmd.services.orchestrator.peers import ExecutorClient, StoreClient
from swarmd.services.orchestrator.planning import parse_strategy, strategy_label
from swarmd.services.orchestrator.servicer import (
    COORDINATOR_SERVICE_NAME,
    SERVICE_NAME,
    CoordinatorServicer,
    OrchestratorServicer,
)
from swarmd.v1 import coordinator_pb2_grpc, orchestrator_pb2_grpc

__all__ = [
    "SERVICE_NAME",
    "Orchestrator",
    "OrchestratorServicer",
    "build_orchestrator",
    "parse_strategy",
    "strategy_label",
]


async def build_orchestrator(
    host: ServiceHost,
    settings: OrchestratorSettings,
    plugins: Plugins,
    *,
    resume: bool = True,
    embedded: bool = False,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    cancel_grace_secs: float = 2.0,
) -> Orchestrator:
    """Register OrchestratorService on ``host`` and return the orchestrator.

    With ``settings.auth.subagent_key_file`` each attempt carries a subagent
    token signed with that key (:mod:`swarmd.services.auth.subagent`).

    Call before ``host.start()``. The orchestrator's address for executors is
    ``settings.advertise_address``, else the host's bound address (resolved
    lazily, once the host has started). Once the host is serving, the journal
    is replayed into the store, then, with ``resume``, swarms a previous orchestrator left unfinished are resumed (a
    standalone orchestrator's) or marked INTERRUPTED (those whose owner is
    gone); an ``embedded`` orchestrator (the one ``swarmd run`` starts in its
    own process) resumes nothing by itself (see :mod:`.resume`).

    The journal (``settings.journal_path``, see :mod:`.journal`) is opened and
    locked here; a second orchestrator on the same file is refused, except an
    ``embedded`` one, which journals beside it under its own name. Its replay
    into the store comes before any resume.

    When the host stops, running swarms are stopped *without* being marked
    cancelled (they are stored INTERRUPTED, resumable), governors and the journal are closed,
    then the host closes the peer channels. ``rng`` and ``sleep`` drive retry backoff (tests inject them).
    """
    # The host closes these after its closers, so the orchestrator can still
    # flush events and state while it shuts down. Subtasks are spread over
    # every executor address the setting resolves to.
    store_channel = host.channel(settings.result_store_address)
    executor_channel = host.channel(settings.executor_address, balanced=True)

    journal = None
    if settings.journal_path is not None:
        journal = await Journal.open(
            settings.journal_path, max_bytes=settings.journal_max_bytes, fallback=embedded
        )
    orchestrator = Orchestrator(
        settings=settings,
        plugins=plugins,
        store=StoreClient(store_channel, settings.rpc_timeout_secs),
        executor=ExecutorClient(
            executor_channel,
            settings.rpc_timeout_secs,
            FollowPolicy(
                heartbeat_secs=settings.heartbeat_interval_secs,
                outage_secs=settings.executor_outage_secs,
            ),
        ),
        orchestrator_address=settings.advertise_address or "",
        tracer=host.telemetry.tracer,
        rng=rng,
        sleep=sleep,
        cancel_grace_secs=cancel_grace_secs,
        embedded=embedded,
        journal=journal,
    )
    if not settings.advertise_address:
        orchestrator.ctx.address_source = lambda: host.address
    if settings.auth.subagent_key_file is not None:
        try:
            key = read_key(settings.auth.subagent_key_file)
        except ValueError as exc:
            raise InvalidArgument(f"orchestrator: {exc}") from None
        orchestrator.ctx.subagent_tokens = SubagentTokens(key, settings.auth.subagent_token_ttl_secs)
    servicer = OrchestratorServicer(orchestrator)
    host.add_service(
        SERVICE_NAME,
        lambda server: orchestrator_pb2_grpc.add_OrchestratorServiceServicer_to_server(
            servicer, server
        ),
    )
    coordinator = CoordinatorServicer(orchestrator)
    host.add_service(
        COORDINATOR_SERVICE_NAME,
        lambda server: coordinator_pb2_grpc.add_CoordinatorServiceServicer_to_server(
            coordinator, server
        ),
    )
    host.on_close(orchestrator.aclose)
    orchestrator.resume_when_serving(lambda: host.port is not None, resume=resume)
    return orchestrator
