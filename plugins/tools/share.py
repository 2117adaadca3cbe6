"""swarm_share: share findings with the other sub-agents of the swarm.

Talks to the result store through the :class:`~swarmd.plugins.runtime.share.ShareClient`
the runtime puts in ``ctx.services["share"]`` (scope = swarm id, producer =
subtask id); the tool is only offered when the runtime has a result store
to give it. Response texts follow the seed (§10.1), plus ``wait``.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from swarmd.plugins.runtime.share import describe, dumps
from swarmd.plugins.tool import Tool, ToolContext, ToolError, ToolResult

__all__ = ["SwarmShareTool"]

DEFAULT_WAIT_SECS = 60
MAX_WAIT_SECS = 600
#: Beyond a wait's own timeout, how long the toolbox lets the call run.
WAIT_GRACE_SECS = 10.0


def _requires(action: str, *fields: str) -> dict[str, Any]:
    return {"if": {"properties": {"action": {"const": action}}}, "then": {"required": list(fields)}}


class SwarmShareTool(Tool):
    name = "swarm_share"
    description = (
        "Share results with the other sub-agents of this swarm. Actions: publish (key, value, tags), "
        "get (key), query_tags (tags), query_prefix (prefix), list, wait (key, timeout_secs: block "
        "until another sub-agent publishes the key)."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": ["publish", "get", "query_tags", "query_prefix", "list", "wait"]},
            "key": {"type": "string", "minLength": 1, "maxLength": 512},
            "value": {"description": "Any JSON value (publish)."},
            "tags": {"type": "array", "items": {"type": "string"}},
            "prefix": {"type": "string", "minLength": 1},
            "ttl_secs": {"type": "integer", "minimum": 0, "description": "Expiry for publish; 0 = never."},
            "timeout_secs": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": MAX_WAIT_SECS,
                "description": f"How long wait blocks (default {DEFAULT_WAIT_SECS}).",
            },
        },
        "required": ["action"],
        "additionalProperties": False,
        "allOf": [
            _requires("publish", "key", "value"),
            _requires("get", "key"),
            _requires("wait", "key"),
            _requires("query_tags", "tags"),
            _requires("query_prefix", "prefix"),
        ],
    }
    # It writes only to the swarm's shared results, never to the repository.
    read_only = True
    #: The runtime must provide these ``ctx.services`` for the tool to be offered.
    requires_services: ClassVar[tuple[str, ...]] = ("share",)

    def timeout_secs(self, args: dict[str, Any], default: float) -> float:
        # A wait may block as long as it asks for; its own "timed out" answer should come first.
        if args.get("action") == "wait":
            return max(default, float(args.get("timeout_secs", DEFAULT_WAIT_SECS)) + WAIT_GRACE_SECS)
        return default

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        share = ctx.services.get("share")
        if share is None:
            raise ToolError("no result store is configured for this sub-agent")
        action = args["action"]
        if action == "publish":
            result = await share.publish(args["key"], args["value"], args.get("tags", []), args.get("ttl_secs", 0))
            return ToolResult(f"Published result '{result.key}' (type: {result.type_name})")
        if action in ("get", "wait"):
            key = args["key"]
            if action == "get":
                result = await share.get(key)
                if result is None:
                    raise ToolError(f"No result found for key: {key}")
            else:
                timeout = float(args.get("timeout_secs", DEFAULT_WAIT_SECS))
                result = await share.wait(key, timeout)
                if result is None:
                    raise ToolError(f"Timed out after {timeout:g}s waiting for key: {key}")
            return ToolResult(dumps(describe(result, with_value=True)))
        if action == "query_tags":
            tags = args["tags"]
            results = await share.query(tags=tags)
            body = dumps([describe(r, with_value=False) for r in results])
            return ToolResult(f"Found {len(results)} results matching tags {json.dumps(tags)}:\n{body}")
        if action == "query_prefix":
            prefix = args["prefix"]
            results = await share.query(prefix=prefix)
            body = dumps([describe(r, with_value=False) for r in results])
            return ToolResult(f"Found {len(results)} results matching prefix '{prefix}':\n{body}")
        results = await share.list()
        if not results:
            return ToolResult("No shared results in store")
        return ToolResult(f"{len(results)} shared results:\n" + dumps([describe(r, with_value=False) for r in results]))
