"""CheckModel: can the sub-agents of this executor service use a model?

The orchestrator asks before it accepts a swarm, so a swarm certain to fail
(``gpt-4o`` without a provider, ``openai/``, ``nosuch/model``, a replay
cassette that is not there) is refused with INVALID_ARGUMENT before any
subtask runs. The executor answers, not the orchestrator, because the
provider plugins, their options and files such as cassettes live where the
sub-agents run, which may be another host. The check does what a sub-agent
attempt does first: it merges the service's options with the swarm's
(:class:`~swarmd.plugins.runtime.attempt.RuntimeSettings`), creates the
provider through :func:`~swarmd.plugins.providers.factory.create_provider`
and closes it again, without making a model call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from swarmd.plugins import ProviderError, model_spec_problem
from swarmd.plugins.manager import Plugins
from swarmd.plugins.providers.factory import create_provider
from swarmd.plugins.runtime.attempt import RuntimeSettings, SettingsError
from swarmd.services.errors import InvalidArgument
from swarmd.v1 import executor_pb2

__all__ = ["MAX_MODEL_CHARS", "check_model"]

log = logging.getLogger(__name__)

MAX_MODEL_CHARS = 1000


async def check_model(
    plugins: Plugins, service_options: Mapping[str, str], request: executor_pb2.CheckModelRequest
) -> executor_pb2.CheckModelResponse:
    """The answer to CheckModel; INVALID_ARGUMENT only for an oversized model string."""
    if len(request.model) > MAX_MODEL_CHARS:
        raise InvalidArgument(f"model is {len(request.model)} characters (max {MAX_MODEL_CHARS})")
    reply = executor_pb2.CheckModelResponse(providers=sorted(plugins.providers.names()))
    reply.problem = model_spec_problem(request.model)
    if reply.problem:
        return reply
    try:
        settings = RuntimeSettings.resolve(service_options, dict(request.executor_options))
    except SettingsError as exc:
        reply.problem = str(exc)
        return reply
    try:
        provider = create_provider(
            plugins, request.model, key="model-check", options=settings.provider_options
        )
    except ProviderError as exc:
        reply.problem = exc.message
        return reply
    except Exception as exc:  # a provider's constructor rejecting its options
        reply.problem = f"cannot create model provider for {request.model!r}: {type(exc).__name__}: {exc}"
        return reply
    try:
        await provider.aclose()
    except Exception:  # closing a provider that made no call should not fail; say so if it does
        log.warning("provider for %r failed to close after the model check", request.model, exc_info=True)
    return reply
