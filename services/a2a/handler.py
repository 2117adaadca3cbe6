"""The A2A request handler: each A2A method as calls on the orchestrator's
public gRPC API (``SwarmdClient``), with no task store of its own.

=====================================  ============================================
A2A                                    orchestrator
=====================================  ============================================
message/send, message/stream           SubmitSwarm (message id = request_id), then
                                       WatchSwarm from the swarm's last sequence
tasks/get                              GetSwarm
tasks/cancel                           CancelSwarm, then GetSwarm
tasks/list                             ListSwarms, then GetSwarm for each
tasks/resubscribe (SubscribeToTask)    GetSwarm (the task as it is now, first
                                       event of the stream), then WatchSwarm
                                       after its ``last_sequence``
=====================================  ============================================

Each call presents the caller's credentials (:attr:`SwarmdRequestHandler.client`),
so the orchestrator's tenant checks hold through A2A.

Everything a task is lives in the orchestrator (the swarm, its labels, its
event log), so a restarted gateway serves the same tasks. A stream starts
with the task as GetSwarm shows it and goes on with the events logged after
that snapshot's sequence: a subscriber that reconnects loses nothing and
sees nothing twice. Push notifications are not offered: the SDK's config
stores keep configs in memory (lost on restart) or in a database of their
own, which a gateway without storage does not have.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Iterator

from a2a.server.context import ServerCallContext
from a2a.server.events.event_queue import Event
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.types import a2a_pb2
from a2a.utils.constants import DEFAULT_LIST_TASKS_PAGE_SIZE, MAX_LIST_TASKS_PAGE_SIZE
from a2a.utils.errors import (
    ExtendedAgentCardNotConfiguredError,
    InvalidParamsError,
    PushNotificationNotSupportedError,
    TaskNotCancelableError,
)

from swarmd.clients.client import TERMINAL_STATES, SwarmdClient
from swarmd.clients.errors import SwarmdClientError
from swarmd.services.a2a import events as mapping
from swarmd.services.a2a.auth import caller_token
from swarmd.services.a2a.errors import a2a_error
from swarmd.services.a2a.repositories import Repositories, RepositoryError
from swarmd.services.a2a.requests import RequestError, parse_send
from swarmd.v1 import common_pb2

__all__ = ["SwarmdRequestHandler"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _orchestrator_errors() -> Iterator[None]:
    try:
        yield
    except SwarmdClientError as exc:
        raise a2a_error(exc) from None


class SwarmdRequestHandler(RequestHandler):
    """Serves A2A requests from the orchestrator behind ``client``, on the
    ``repositories`` configured; ``default_model`` is used when a request
    names no model."""

    def __init__(self, client: SwarmdClient, repositories: Repositories, *, default_model: str = "") -> None:
        self._client = client
        self.repositories = repositories
        self.default_model = default_model

    @property
    def client(self) -> SwarmdClient:
        """The orchestrator client for the request being served: with the
        caller's token when the gateway authenticated one (:mod:`.auth`), so the
        orchestrator sees the caller's identity and tenant; else the gateway's own."""
        token = caller_token()
        return self._client.with_token(token) if token else self._client

    # -- starting a swarm ---------------------------------------------------

    async def _submit(self, params: a2a_pb2.SendMessageRequest) -> common_pb2.Swarm:
        try:
            submission = parse_send(params, self.default_model)
            repo = self.repositories.resolve(submission.repository)
        except (RequestError, RepositoryError) as exc:
            raise InvalidParamsError(str(exc)) from None
        config = common_pb2.SwarmConfig()
        config.CopyFrom(submission.config)
        config.repo_path = str(repo.path)
        with _orchestrator_errors():
            reply = await self.client.submit(
                task=submission.task,
                plan=submission.plan,
                config=config,
                request_id=submission.request_id,
                labels=submission.labels,
            )
        return reply.swarm

    async def on_message_send(
        self, params: a2a_pb2.SendMessageRequest, context: ServerCallContext
    ) -> a2a_pb2.Task:
        swarm = await self._submit(params)
        if not params.configuration.return_immediately:
            async for _event in self._follow(swarm):
                pass
            with _orchestrator_errors():
                swarm = await self.client.get(swarm.id)
        return mapping.swarm_task(swarm)

    async def on_message_send_stream(
        self, params: a2a_pb2.SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        swarm = await self._submit(params)
        async for event in self._follow(swarm):
            yield event

    # -- reading, following, cancelling --------------------------------------

    async def on_get_task(self, params: a2a_pb2.GetTaskRequest, context: ServerCallContext) -> a2a_pb2.Task:
        with _orchestrator_errors():
            return mapping.swarm_task(await self.client.get(params.id))

    async def on_subscribe_to_task(
        self, params: a2a_pb2.SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        with _orchestrator_errors():
            swarm = await self.client.get(params.id)
        async for event in self._follow(swarm):
            yield event

    async def on_cancel_task(self, params: a2a_pb2.CancelTaskRequest, context: ServerCallContext) -> a2a_pb2.Task:
        with _orchestrator_errors():
            reply = await self.client.cancel(params.id, reason="cancelled by an A2A client")
            swarm = await self.client.get(params.id)
        if reply.already_finished and reply.state != common_pb2.SWARM_STATE_CANCELLED:
            state = common_pb2.SwarmState.Name(reply.state).removeprefix("SWARM_STATE_").lower()
            raise TaskNotCancelableError(f"task {params.id} has already finished ({state})")
        return mapping.swarm_task(swarm)

    async def _follow(self, swarm: common_pb2.Swarm) -> AsyncGenerator[Event]:
        """The task as ``swarm`` shows it, then the events logged after it."""
        task = mapping.swarm_task(swarm)
        yield task
        if swarm.state in TERMINAL_STATES:
            return
        context_id = mapping.context_of(swarm)
        sent = {a.artifact_id for a in task.artifacts}
        finished = False
        with _orchestrator_errors():
            async for event in self.client.watch(swarm.id, after_sequence=swarm.last_sequence):
                kind = event.WhichOneof("kind")
                if kind == "complete":
                    async for update in self._finish(swarm.id, context_id, sent, event):
                        yield update
                    finished = True
                    continue
                line = mapping.progress_line(event)
                if line is not None:
                    yield mapping.status_update(event, line, context_id)
                if kind == "subtask_update" and event.subtask_update.status in mapping.FINAL_SUBTASK_STATUSES:
                    for artifact in await self._new_artifacts(swarm.id, sent):
                        yield a2a_pb2.TaskArtifactUpdateEvent(
                            task_id=swarm.id, context_id=context_id, artifact=artifact, last_chunk=True
                        )
            if not finished:
                now = await self.client.get(swarm.id)
                if now.state in TERMINAL_STATES:
                    async for update in self._finish(swarm.id, context_id, sent, None, now):
                        yield update

    async def _new_artifacts(self, swarm_id: str, sent: set[str]) -> list[a2a_pb2.Artifact]:
        swarm = await self.client.get(swarm_id)
        fresh = []
        for sub in swarm.subtasks:
            ident = mapping.subtask_artifact_id(sub.subtask.id)
            if sub.status in mapping.FINAL_SUBTASK_STATUSES and sub.HasField("result") and ident not in sent:
                sent.add(ident)
                fresh.append(mapping.subtask_artifact(sub))
        return fresh

    async def _finish(
        self,
        swarm_id: str,
        context_id: str,
        sent: set[str],
        event: common_pb2.SwarmEvent | None,
        swarm: common_pb2.Swarm | None = None,
    ) -> AsyncGenerator[Event]:
        """The last subtask artifacts, the result artifact and the final status."""
        for artifact in await self._new_artifacts(swarm_id, sent):
            yield a2a_pb2.TaskArtifactUpdateEvent(
                task_id=swarm_id, context_id=context_id, artifact=artifact, last_chunk=True
            )
        swarm = swarm or await self.client.get(swarm_id)
        if event is not None and swarm.state not in TERMINAL_STATES and event.complete.state:
            swarm.state = event.complete.state  # the store catches up a moment later
        yield a2a_pb2.TaskArtifactUpdateEvent(
            task_id=swarm_id, context_id=context_id, artifact=mapping.result_artifact(swarm), last_chunk=True
        )
        if event is None:
            event = common_pb2.SwarmEvent(swarm_id=swarm_id, sequence=swarm.last_sequence)
            event.time.CopyFrom(swarm.finished_at)
        yield mapping.status_update(
            event, mapping.final_status_text(swarm), context_id, mapping.task_state(swarm.state)
        )

    # -- what the gateway does not offer -------------------------------------

    async def on_list_tasks(
        self, params: a2a_pb2.ListTasksRequest, context: ServerCallContext
    ) -> a2a_pb2.ListTasksResponse:
        """ListSwarms, newest first; ``context_id`` filters within each page
        (a page may hold fewer tasks than asked for, the token goes on)."""
        size = params.page_size or DEFAULT_LIST_TASKS_PAGE_SIZE
        if not 1 <= size <= MAX_LIST_TASKS_PAGE_SIZE:
            raise InvalidParamsError(f"page_size must be between 1 and {MAX_LIST_TASKS_PAGE_SIZE}")
        states = mapping.swarm_states(params.status) if params.status else []
        if params.status and not states:
            return a2a_pb2.ListTasksResponse(page_size=size)
        with _orchestrator_errors():
            page = await self.client.list(page_size=size, page_token=params.page_token, states=states)
            swarms = [await self.client.get(summary.id) for summary in page.swarms]
        tasks = [
            mapping.swarm_task(swarm) for swarm in swarms
            if not params.context_id or mapping.context_of(swarm) == params.context_id
        ]
        return a2a_pb2.ListTasksResponse(tasks=tasks, next_page_token=page.next_page_token, page_size=size)

    async def on_create_task_push_notification_config(
        self, params: a2a_pb2.TaskPushNotificationConfig, context: ServerCallContext
    ) -> a2a_pb2.TaskPushNotificationConfig:
        raise PushNotificationNotSupportedError("push notifications are not offered: stream or resubscribe")

    async def on_get_task_push_notification_config(
        self, params: a2a_pb2.GetTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> a2a_pb2.TaskPushNotificationConfig:
        raise PushNotificationNotSupportedError("push notifications are not offered")

    async def on_list_task_push_notification_configs(
        self, params: a2a_pb2.ListTaskPushNotificationConfigsRequest, context: ServerCallContext
    ) -> a2a_pb2.ListTaskPushNotificationConfigsResponse:
        raise PushNotificationNotSupportedError("push notifications are not offered")

    async def on_delete_task_push_notification_config(
        self, params: a2a_pb2.DeleteTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> None:
        raise PushNotificationNotSupportedError("push notifications are not offered")

    async def on_get_extended_agent_card(
        self, params: a2a_pb2.GetExtendedAgentCardRequest, context: ServerCallContext
    ) -> a2a_pb2.AgentCard:
        raise ExtendedAgentCardNotConfiguredError("swarmd has no extended agent card")
