"""Moving bytes and commits between the executor and a pod, through the result store.

A pod cannot see the user's repository, so code travels as git bundles:

* :func:`bundle_commits` packs the commits a subtask starts from (the swarm's
  base commit and its dependencies' commits) into a bundle under temporary
  refs ``refs/swarmd/ship/...``; :func:`unbundle` fetches a bundle's refs into
  a repository (the pod's fresh clone, or the user's repository when the
  pod's work comes back).
* :func:`put_blob` and :func:`get_blob` send and receive any file over the
  result store's ``PutBlob``/``GetBlob`` RPCs in 1 MiB chunks, with its size
  and SHA-256 checked at both ends.

Git runs with no shell, ``GIT_TERMINAL_PROMPT=0``, ``LC_ALL=C`` and the
system and user configuration ignored, so hooks or settings cannot change
what is shipped.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc

from swarmd.v1 import result_store_pb2 as pb
from swarmd.v1 import result_store_pb2_grpc

__all__ = ["BUNDLE_MEDIA_TYPE", "TransferError", "bundle_commits", "get_blob", "git", "put_blob", "unbundle"]

CHUNK = 1024 * 1024
BUNDLE_MEDIA_TYPE = "application/x-git-bundle"
SHIP_PREFIX = "refs/swarmd/ship/"


class TransferError(RuntimeError):
    """Shipping a bundle or blob failed."""


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    return env


async def git(repo: Path, *args: str, timeout: float = 300.0) -> str:
    """Run git in ``repo``; raises :class:`TransferError` with its stderr on failure."""
    proc = await asyncio.create_subprocess_exec(
        "git", "-C", str(repo), *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=_git_env(), start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode != 0:
        raise TransferError(f"git {' '.join(args[:2])} failed: {err.decode(errors='replace').strip()}")
    return out.decode()


async def bundle_commits(repo: Path, commits: Sequence[str], out: Path, *, tag: str) -> None:
    """Write a bundle of ``commits`` (and their history) as refs ``refs/swarmd/ship/0..n``."""
    names = [f"{SHIP_PREFIX}{tag}/{i}" for i in range(len(commits))]
    try:
        for name, commit in zip(names, commits, strict=True):
            await git(repo, "update-ref", name, commit)
        await git(repo, "bundle", "create", str(out), *names)
    finally:
        for name in names:
            try:
                await git(repo, "update-ref", "-d", name)
            except TransferError:
                pass


async def unbundle(repo: Path, bundle: Path, prefix: str) -> dict[str, str]:
    """Fetch every ref of ``bundle`` into ``repo`` under ``prefix``; ref name -> commit."""
    await git(repo, "bundle", "verify", str(bundle))
    heads = await git(repo, "bundle", "list-heads", str(bundle))
    refs: dict[str, str] = {}
    for line in heads.splitlines():
        commit, _, name = line.partition(" ")
        if name:
            refs[name] = commit
    if refs:
        await git(repo, "fetch", "-q", "--no-tags", str(bundle), f"+refs/*:{prefix.rstrip('/')}/*")
    return refs


async def put_blob(channel: grpc.aio.Channel, path: Path, *, media_type: str = BUNDLE_MEDIA_TYPE,
                   timeout: float = 600.0) -> str:
    """Upload a file; returns its blob id."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    sha = digest.hexdigest()

    async def parts() -> AsyncIterator[pb.PutBlobRequest]:
        yield pb.PutBlobRequest(header=pb.BlobInfo(size=size, sha256=sha, media_type=media_type))
        with path.open("rb") as handle:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield pb.PutBlobRequest(chunk=chunk)

    stub = result_store_pb2_grpc.ResultStoreServiceStub(channel)
    try:
        reply = await stub.PutBlob(parts(), timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        raise TransferError(f"PutBlob: {exc.code().name}: {exc.details()}") from exc
    if reply.blob.blob_id != sha:
        raise TransferError(f"PutBlob stored {reply.blob.blob_id}, expected {sha}")
    return sha


async def get_blob(channel: grpc.aio.Channel, blob_id: str, out: Path, *, timeout: float = 600.0) -> int:
    """Download a blob into ``out``, checking its size and SHA-256; returns its size."""
    stub = result_store_pb2_grpc.ResultStoreServiceStub(channel)
    digest = hashlib.sha256()
    size = 0
    header: pb.BlobInfo | None = None
    try:
        with out.open("wb") as handle:
            async for part in stub.GetBlob(pb.GetBlobRequest(blob_id=blob_id), timeout=timeout):
                if part.WhichOneof("part") == "header":
                    header = part.header
                    continue
                digest.update(part.chunk)
                size += len(part.chunk)
                handle.write(part.chunk)
    except grpc.aio.AioRpcError as exc:
        raise TransferError(f"GetBlob {blob_id[:12]}: {exc.code().name}: {exc.details()}") from exc
    if header is None or size != header.size or digest.hexdigest() != header.sha256:
        raise TransferError(f"blob {blob_id[:12]} arrived damaged ({size} bytes, sha256 {digest.hexdigest()[:12]})")
    return size
