"""Reading files of a lazy worktree that are not written yet, as checkout would write them.

grep on a lazy worktree (:mod:`.lazy`) reads the entries not on disk from
the object store. It must see the bytes a checkout would write: with the
worktree's ``.gitattributes`` and ``core.autocrlf`` / ``core.eol`` applied
(end-of-line conversion, ``ident``, a filter driver,
``working-tree-encoding``). ``git cat-file --batch --filters`` would be the
one process for that, but git (2.39 at least) prints the *unconverted* size
in its header while writing the converted bytes, so a converted file makes
the stream unreadable. So :class:`BlobReader` asks ``git check-attr
--stdin`` (one process, answering per path) whether a checkout could
change the file: if not, the raw blob is the file, read from one
``git cat-file --batch``; if so, that one file is read with
``git cat-file --filters --path``, whose output has no header to get wrong.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import IO

from swarmd.plugins.runtime.worktree.git import end_batch_process, start_batch_process
from swarmd.plugins.runtime.worktree.model import WorktreeError

__all__ = ["BlobReader", "converts_on_checkout"]

#: Bytes read from git at a time when skipping a blob too large to keep.
_CHUNK = 1024 * 1024
#: The attributes that can make a checked-out file differ from its blob.
ATTRIBUTES = ("filter", "ident", "working-tree-encoding", "eol", "text", "crlf")
_UNSET = ("unspecified", "unset")


def converts_on_checkout(attrs: dict[str, str], crlf_config: bool) -> bool:
    """Whether a checkout may write other bytes than the blob's, given the
    file's :data:`ATTRIBUTES` (``git check-attr`` values) and whether the
    configuration asks for CRLF line ends (``core.autocrlf=true`` or
    ``core.eol=crlf``). Errs towards True."""
    if any(attrs.get(a, "unspecified") not in _UNSET for a in ("filter", "ident", "working-tree-encoding")):
        return True
    if attrs.get("text") == "unset" or attrs.get("crlf") == "unset":
        return False  # binary: written as stored
    return attrs.get("eol") == "crlf" or crlf_config


class BlobReader:
    """Reads blobs as a checkout of the worktree at ``root`` would write them.

    ``blob_id`` names the blob of an entry not written yet (None: it is on
    disk, read the file); ``git`` runs a one-off git command in ``root``
    and returns its output. Close it, or use it in a ``with``.
    """

    def __init__(self, root: Path, blob_id: Callable[[str], str | None], git: Callable[..., bytes]) -> None:
        self._root = root
        self._blob_id = blob_id
        self._git = git
        self._cat: subprocess.Popen[bytes] | None = None
        self._attrs: subprocess.Popen[bytes] | None = None
        self._crlf_config: bool | None = None

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, rel: str, limit: int) -> bytes | None:
        """Entry ``rel`` as checkout would write it; None when larger than ``limit``
        or when it is no longer only in the index (read the file instead)."""
        oid = self._blob_id(rel)
        if oid is None:
            return None
        if "\n" in rel or "\r" in rel or self._converts(rel):
            data = self._git("cat-file", "--filters", f"--path={rel}", oid)
            return data if len(data) <= limit else None
        proc = self._cat = self._cat or start_batch_process(self._root, "cat-file", "--batch")
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(f"{oid}\n".encode())
        proc.stdin.flush()
        header = proc.stdout.readline().split()
        if len(header) != 3:
            self.close()
            raise WorktreeError(f"cannot read {rel} from the object store")
        size = int(header[2])
        if size > limit:
            _skip(proc.stdout, size + 1)
            return None
        data = _read_exact(proc.stdout, size)
        proc.stdout.read(1)
        return data

    def _converts(self, rel: str) -> bool:
        if self._crlf_config is None:
            self._crlf_config = self._config_wants_crlf()
        proc = self._attrs = self._attrs or start_batch_process(self._root, "check-attr", "--stdin", "-z", *ATTRIBUTES)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(os.fsencode(rel) + b"\0")
        proc.stdin.flush()
        fields = _read_fields(proc.stdout, 3 * len(ATTRIBUTES))
        attrs = {fields[i + 1].decode(): fields[i + 2].decode() for i in range(0, len(fields), 3)}
        return converts_on_checkout(attrs, self._crlf_config)

    def _config_wants_crlf(self) -> bool:
        try:
            out = self._git("config", "-z", "--get-regexp", r"^core\.(autocrlf|eol)$")
        except WorktreeError:
            return False  # neither is set (git config exits 1)
        values = dict(item.decode().lower().partition("\n")[::2] for item in out.split(b"\0") if item)
        return values.get("core.autocrlf") in ("true", "yes", "on", "1") or values.get("core.eol") == "crlf"

    def close(self) -> None:
        for proc in (self._cat, self._attrs):
            if proc is not None:
                end_batch_process(proc)
        self._cat = self._attrs = None


def _read_fields(stream: IO[bytes], count: int) -> list[bytes]:
    """``count`` NUL-terminated fields from ``stream`` (which answers only what was asked)."""
    data = bytearray()
    while data.count(b"\0") < count:
        chunk = stream.read1(65536)  # type: ignore[attr-defined]
        if not chunk:
            raise WorktreeError("git check-attr ended early")
        data += chunk
    return bytes(data).split(b"\0")[:count]


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    parts: list[bytes] = []
    left = size
    while left:
        chunk = stream.read(min(left, _CHUNK))
        if not chunk:
            raise WorktreeError("git cat-file ended early")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _skip(stream: IO[bytes], size: int) -> None:
    left = size
    while left:
        chunk = stream.read(min(left, _CHUNK))
        if not chunk:
            return
        left -= len(chunk)
