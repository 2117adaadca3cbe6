"""Blobs: content-addressed files next to the database, sent and read in chunks.

The Kubernetes executor ships a subtask's base to its pod and brings the pod's
commits back as git bundles through :class:`BlobStore` (``PutBlob`` and
``GetBlob``). A blob's id is the hex SHA-256 of its bytes. Bytes arrive into a
temporary file in the blob directory while their hash is computed; only when
the size and checksum match the header is the file renamed to its id, so a
broken upload never leaves a blob that looks whole. Blobs live in
``<db_path>.blobs/`` (a private temporary directory for an in-memory
database). The store's sweeper removes blobs a day after they were written
(:data:`BLOB_TTL_SECS`): they carry one attempt's code, needed only while it
runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncGenerator, AsyncIterable
from pathlib import Path

from swarmd.services.errors import InvalidArgument, NotFound, ResourceExhausted
from swarmd.v1 import result_store_pb2 as pb

__all__ = ["BLOB_TTL_SECS", "CHUNK_BYTES", "DEFAULT_MAX_BLOB_BYTES", "BlobStore"]

#: Largest chunk accepted or sent.
CHUNK_BYTES = 1024 * 1024
#: Blobs older than this are removed by the store's sweeper.
BLOB_TTL_SECS = 24 * 3600
#: Largest blob accepted by default.
DEFAULT_MAX_BLOB_BYTES = 512 * 1024 * 1024
_ID = re.compile(r"^[0-9a-f]{64}$")


class BlobStore:
    """Content-addressed blobs in one directory."""

    def __init__(self, directory: Path | None, *, max_bytes: int = DEFAULT_MAX_BLOB_BYTES) -> None:
        self._owned = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="swarmd-blobs-")) if directory is None else directory
        self.max_bytes = max_bytes

    @classmethod
    def beside(cls, db_path: Path | str, *, max_bytes: int = DEFAULT_MAX_BLOB_BYTES) -> BlobStore:
        """The blob store of a database file (private temporary one for ``:memory:``)."""
        text = str(db_path)
        if text == ":memory:" or text.startswith("file::memory:"):
            return cls(None, max_bytes=max_bytes)
        return cls(Path(text + ".blobs"), max_bytes=max_bytes)

    def _path(self, blob_id: str) -> Path:
        if not _ID.match(blob_id):
            raise InvalidArgument(f"blob_id {blob_id!r} is not a lower-case hex SHA-256")
        return self.directory / blob_id

    async def put(self, parts: AsyncIterable[pb.PutBlobRequest]) -> pb.BlobInfo:
        """Store a header-then-chunks stream; returns the stored blob's info."""
        header: pb.BlobInfo | None = None
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=self.directory)
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for part in parts:
                    which = part.WhichOneof("part")
                    if which == "header":
                        if header is not None:
                            raise InvalidArgument("PutBlob got a second header")
                        header = part.header
                        if header.size < 0 or header.size > self.max_bytes:
                            raise ResourceExhausted(
                                f"blob of {header.size} bytes is over the store's limit of {self.max_bytes} bytes"
                            )
                        if not _ID.match(header.sha256):
                            raise InvalidArgument("PutBlob header needs sha256: the lower-case hex SHA-256 of the bytes")
                        continue
                    if header is None:
                        raise InvalidArgument("PutBlob must start with a header")
                    if which != "chunk" or not part.chunk:
                        raise InvalidArgument("PutBlob chunks must not be empty")
                    if len(part.chunk) > CHUNK_BYTES:
                        raise InvalidArgument(f"PutBlob chunk of {len(part.chunk)} bytes is over {CHUNK_BYTES}")
                    size += len(part.chunk)
                    if size > header.size:
                        raise InvalidArgument(f"PutBlob sent more than the {header.size} bytes its header announced")
                    digest.update(part.chunk)
                    await asyncio.to_thread(out.write, part.chunk)
            if header is None:
                raise InvalidArgument("PutBlob must start with a header")
            if size != header.size:
                raise InvalidArgument(f"PutBlob sent {size} bytes, its header announced {header.size}")
            sha = digest.hexdigest()
            if sha != header.sha256:
                raise InvalidArgument(f"PutBlob checksum mismatch: got {sha}, header says {header.sha256}")
            os.replace(tmp_name, self.directory / sha)
        except BaseException:
            with _suppress_oserror():
                os.unlink(tmp_name)
            raise
        return pb.BlobInfo(blob_id=sha, size=size, sha256=sha, media_type=header.media_type)

    async def get(self, blob_id: str) -> AsyncGenerator[pb.GetBlobResponse, None]:
        """The header, then the chunks of a stored blob."""
        path = self._path(blob_id)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise NotFound(f"no blob {blob_id}") from None
        with handle:
            size = os.fstat(handle.fileno()).st_size
            yield pb.GetBlobResponse(header=pb.BlobInfo(blob_id=blob_id, size=size, sha256=blob_id))
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield pb.GetBlobResponse(chunk=chunk)

    def delete(self, blob_id: str) -> bool:
        """Remove a blob; False when there was none."""
        try:
            self._path(blob_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def delete_older_than(self, age_secs: float, now: float | None = None) -> int:
        """Remove blobs (and abandoned uploads) not written for ``age_secs``; returns how many."""
        if not self.directory.is_dir():
            return 0
        limit = (time.time() if now is None else now) - age_secs
        removed = 0
        for entry in self.directory.iterdir():
            with _suppress_oserror():
                if entry.stat().st_mtime < limit:
                    entry.unlink()
                    removed += 1
        return removed

    def close(self) -> None:
        if self._owned:
            shutil.rmtree(self.directory, ignore_errors=True)


class _suppress_oserror:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        return isinstance(exc, OSError)
