"""The result cache, seen from a sub-agent attempt.

The key is SHA-256 over a canonical JSON encoding of everything that decides
what a sub-agent would do:

* the subtask's instruction, specialty and read-only flag;
* its dependencies' results (name, success, output text — in dependency order);
* the provider and model;
* the tool-set version: a digest of the offered tools' names, descriptions and
  schemas (a changed tool changes every key);
* the prompt-template version (:data:`PROMPT_TEMPLATE_VERSION`);
* the git tree of the subtask's deterministic base — the commit the swarm
  started from plus its own dependencies' merged work (#worktrees) — so a
  repeated swarm from the same starting commit hits whatever order its
  subtasks finished in, and a changed repository misses.

On a hit the attempt completes without a model call; for a mutating subtask
the recorded patch is re-applied to the fresh worktree and committed and
merged like an agent's work, so the repository ends in the same state. When
the patch no longer applies cleanly the hit counts as a miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from typing import Any

import grpc

from swarmd.plugins.runtime.prompts import PROMPT_TEMPLATE_VERSION
from swarmd.v1 import common_pb2, executor_pb2, result_store_pb2, result_store_pb2_grpc

__all__ = ["CacheClient", "cache_enabled", "cache_key", "toolset_version"]

log = logging.getLogger(__name__)


def cache_enabled(config: common_pb2.SwarmConfig) -> bool:
    return config.cache_enabled if config.HasField("cache_enabled") else True


def toolset_version(tool_classes: Iterable[Any]) -> str:
    """Digest of the tools offered (name, description, schema), order-independent."""
    specs = sorted(
        (cls.name, cls.description, json.dumps(dict(cls.parameters), sort_keys=True)) for cls in tool_classes
    )
    return hashlib.sha256(json.dumps(specs).encode()).hexdigest()[:16]


def cache_key(
    request: executor_pb2.ExecuteSubTaskRequest, *, provider: str, model: str, toolset: str, base_tree: str
) -> str:
    subtask = request.subtask
    document = {
        "v": 1,
        "instruction": subtask.instruction,
        "specialty": subtask.specialty,
        "read_only": subtask.read_only,
        "dependencies": [
            {"name": d.name or d.subtask_id, "success": d.success, "result": d.result, "error": d.error}
            for d in request.dependencies
        ],
        "provider": provider,
        "model": model,
        "toolset": toolset,
        "prompt": PROMPT_TEMPLATE_VERSION,
        "base_tree": base_tree,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class CacheClient:
    """CacheGet/CachePut against the result store; failures degrade to a miss."""

    def __init__(self, channel: grpc.aio.Channel, *, rpc_timeout: float = 30.0) -> None:
        self._stub = result_store_pb2_grpc.ResultStoreServiceStub(channel)
        self._timeout = rpc_timeout

    async def get(self, key: str) -> common_pb2.SubTaskResult | None:
        entry = await self.get_entry(key)
        return entry.result if entry is not None else None

    async def get_entry(self, key: str) -> result_store_pb2.CacheEntry | None:
        try:
            reply = await self._stub.CacheGet(result_store_pb2.CacheGetRequest(key=key), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("cache lookup failed (treated as a miss): %s", exc.details())
            return None
        return reply.entry if reply.hit else None

    async def put(
        self, key: str, result: common_pb2.SubTaskResult, *, patch: bytes, base_tree: str, task_name: str, ttl_secs: int
    ) -> None:
        entry = result_store_pb2.CacheEntry(key=key, result=result, patch=patch, base_tree=base_tree, task_name=task_name)
        try:
            await self._stub.CachePut(
                result_store_pb2.CachePutRequest(entry=entry, ttl_secs=max(0, ttl_secs)), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            log.warning("cache store failed (result kept, not cached): %s", exc.details())
