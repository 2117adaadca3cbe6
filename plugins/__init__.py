"""swarmd's plugin API: what a plugin author imports.

    from swarmd.plugins import hookimpl, Executor

    class MyExecutor(Executor):
        name = "mine"
        ...

    @hookimpl
    def swarmd_register_executors(registry):
        registry.add(MyExecutor)

See :mod:`swarmd.plugins.hookspecs` for every hook.
"""

from __future__ import annotations

import pluggy

from swarmd.plugins.executor import Executor, ExecutorContext, ResourceHealth
from swarmd.plugins.extras import MissingExtra, require_extra
from swarmd.plugins.health import HealthCheck, HealthResult, HealthStatus
from swarmd.plugins.model import (
    CompletionRequest,
    CompletionResponse,
    Message,
    ModelProvider,
    PermanentProviderError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ToolCall,
    ToolSpec,
    TransientProviderError,
    Usage,
    model_spec_problem,
    parse_model_string,
)
from swarmd.plugins.registry import Plugins
from swarmd.plugins.tool import PathEscapeError, Tool, ToolContext, ToolError, ToolResult

#: Marker for hook implementations in plugins.
hookimpl = pluggy.HookimplMarker("swarmd")

__all__ = [
    "CompletionRequest",
    "CompletionResponse",
    "Executor",
    "ExecutorContext",
    "HealthCheck",
    "HealthResult",
    "HealthStatus",
    "Message",
    "MissingExtra",
    "ModelProvider",
    "PathEscapeError",
    "PermanentProviderError",
    "Plugins",
    "ProviderError",
    "ProviderTimeoutError",
    "ResourceHealth",
    "RateLimitError",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolError",
    "ToolResult",
    "ToolSpec",
    "TransientProviderError",
    "Usage",
    "hookimpl",
    "model_spec_problem",
    "parse_model_string",
    "require_extra",
]
