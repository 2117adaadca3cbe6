"""Inside the pod: ``swarmd agent run-subtask`` runs one attempt and reports back.

Steps (the environment names everything, ``$SWARMD_SWARM_ID`` and
``$SWARMD_POD_NAME`` among it; the request never travels in it):

1. fetch the request (a serialized ``ExecuteSubTaskRequest``) from the blob
   ``$SWARMD_PAYLOAD_BLOB`` and the base bundle from ``$SWARMD_BASE_BUNDLE_BLOB``,
   both from the result store at ``$SWARMD_RESULT_STORE_ADDRESS``;
2. make ``<workspace>/repo`` from the bundle (the swarm's base commit checked
   out, the dependencies' commits present);
3. run :func:`~swarmd.plugins.runtime.attempt.run_attempt`, the same runtime
   as the local executor (the governor, budgets and shared results through
   the request's orchestrator and result store addresses), streaming its
   events back as they happen (:mod:`.relay`); a mutating subtask works in a
   worktree from the same deterministic base as it would locally and its
   work is committed, not merged;
4. upload the result, and for a mutating subtask a bundle of its commits,
   then publish the outcome.

With ``$SWARMD_SUBAGENT_TOKEN`` (services that authenticate) every call the
pod makes carries the attempt's subagent token.

Exit status: 0 once the outcome is published (even when the sub-agent
failed: that failure is in the result); 2 when the pod's own machinery
failed (the outcome then carries the error when the store is reachable).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import grpc

from swarmd.plugins.executors.kubernetes.relay import PodPublisher
from swarmd.plugins.executors.kubernetes.transfer import (
    TransferError,
    get_blob,
    git,
    put_blob,
    unbundle,
)
from swarmd.v1 import common_pb2, executor_pb2

__all__ = ["run_subtask"]

log = logging.getLogger(__name__)


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise TransferError(f"${name} is not set: this command runs inside a pod made by the kubernetes executor")
    return value


async def _checkout(workspace: Path, bundle: Path, request: executor_pb2.ExecuteSubTaskRequest) -> Path:
    repo = workspace / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    await git(repo, "init", "-q")
    await unbundle(repo, bundle, "refs/swarmd/ship")
    await git(repo, "checkout", "-q", "-B", "swarmd-base", request.workspace.base_commit)
    return repo


async def _work_bundle(repo: Path, result: common_pb2.SubTaskResult, request: executor_pb2.ExecuteSubTaskRequest,
                       out: Path) -> str:
    """Bundle the attempt's commits; returns the tip, "" when there are none."""
    commit = result.merge.commit
    branch = result.merge.branch
    if not commit or not branch:
        return ""
    exclude = [f"^{c}" for c in (request.workspace.base_commit, *[d.commit for d in request.dependencies if d.commit])]
    await git(repo, "bundle", "create", str(out), f"refs/heads/{branch}", *exclude)
    return commit


def _options() -> dict[str, str]:
    """The runtime's service-level options, ``$SWARMD_EXECUTOR_OPTIONS`` (a JSON object)."""
    raw = os.environ.get("SWARMD_EXECUTOR_OPTIONS", "")
    if not raw:
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise TransferError("$SWARMD_EXECUTOR_OPTIONS must be a JSON object")
    return {str(k): str(v) for k, v in value.items()}


async def run_subtask(workspace: Path) -> int:
    """The whole pod run; returns the exit status."""
    from swarmd.plugins.manager import load_plugins
    from swarmd.plugins.runtime.attempt import Runtime, run_attempt
    from swarmd.plugins.runtime.channels import ChannelPool

    pod = os.environ.get("SWARMD_POD_NAME", "") or "swarmd-pod"
    try:
        swarm_id = _env("SWARMD_SWARM_ID")
        store_address = _env("SWARMD_RESULT_STORE_ADDRESS")
        payload_blob = _env("SWARMD_PAYLOAD_BLOB")
        base_blob = _env("SWARMD_BASE_BUNDLE_BLOB")
    except TransferError as exc:
        print(f"swarmd agent: {exc}", file=sys.stderr)
        return 2
    from swarmd.services.auth.outgoing import bearer_interceptors

    token = os.environ.get("SWARMD_SUBAGENT_TOKEN", "")
    channels = ChannelPool(interceptors=bearer_interceptors(lambda: token) if token else ())
    store = channels.get(store_address)
    publisher = PodPublisher(store, swarm_id, pod)
    try:
        with tempfile.TemporaryDirectory(prefix="swarmd-agent-", dir=os.environ.get("TMPDIR")) as scratch:
            scratch_dir = Path(scratch)
            await get_blob(store, payload_blob, scratch_dir / "request.pb")
            request = executor_pb2.ExecuteSubTaskRequest.FromString((scratch_dir / "request.pb").read_bytes())
            await get_blob(store, base_blob, scratch_dir / "base.bundle")
            repo = await _checkout(workspace, scratch_dir / "base.bundle", request)
            request.workspace.repo_path = str(repo)
            request.config.repo_path = str(repo)
            runtime = Runtime(plugins=load_plugins(), channels=channels, options=_options(),
                              executor_name=f"kubernetes:{pod}")
            result = await run_attempt(request, runtime, emit=publisher.emit)
            result.worktree_path = ""
            result_path = scratch_dir / "result.pb"
            result_path.write_bytes(result.SerializeToString())
            result_blob = await put_blob(store, result_path, media_type="application/x-protobuf")
            bundle_blob, commit = "", ""
            if result.success and not request.subtask.read_only:
                bundle = scratch_dir / "work.bundle"
                commit = await _work_bundle(repo, result, request, bundle)
                if commit:
                    bundle_blob = await put_blob(store, bundle)
            await publisher.outcome(result_blob=result_blob, bundle_blob=bundle_blob, commit=commit, error="")
        return 0
    except (TransferError, grpc.aio.AioRpcError, OSError, ValueError) as exc:
        message = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
        print(f"swarmd agent: {message}", file=sys.stderr)
        try:
            await publisher.outcome(error=message, failure_kind=common_pb2.FAILURE_KIND_TRANSIENT)
        except Exception as again:
            print(f"swarmd agent: cannot report the failure either: {again}", file=sys.stderr)
        return 2
    finally:
        await channels.aclose()


def main(workspace: str) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    return asyncio.run(run_subtask(Path(workspace)))
