"""Keeping each worktree's files apart on the disk, where the file system lets swarmd ask.

A swarm makes and deletes hundreds of worktrees in a few minutes, each with
its files and folders, inside two folders (``.swarmd/worktrees/<swarm>/``
and the administrative folders made in ``.git/swarmd-new/``). ext2, ext3
and ext4 place a new file in its folder's block group, and a new folder
near its parent, so every worktree lands in the same group as the ones
deleted just before it. ext4 without a journal (common on virtual machines'
scratch disks) then skips each inode freed in the last minutes, reading its
inode-table entry to find out, so a new file costs time in proportion to
how many were deleted nearby: close to a millisecond each after a swarm or
two, against tens of microseconds on a fresh group.

The same file systems have a flag for exactly this, ``FS_TOPDIR_FL``
(``chattr +T``): the folders made in a folder that carries it are treated as
unrelated hierarchies and spread over the block groups with the most free
room, as the top-level folders of a disk are. :func:`spread` sets it on the
folders swarmd makes worktrees in. It changes nothing anyone reads: not the
paths, not the files, not what git sees. Where the flag does not exist (other
file systems, other systems) the request is refused by the kernel and
ignored; a folder that cannot be opened is ignored too, since the worktree's
own creation reports that better.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from pathlib import Path

__all__ = ["FS_TOPDIR_FL", "is_spread", "spread"]

#: ``FS_TOPDIR_FL`` of ``<linux/fs.h>``: "top of directory hierarchies".
FS_TOPDIR_FL = 0x00020000
# FS_IOC_GETFLAGS and FS_IOC_SETFLAGS (_IOR / _IOW('f', 1 / 2, long)); the kernel reads an int.
_GETFLAGS = 0x80086601 if struct.calcsize("l") == 8 else 0x80046601
_SETFLAGS = 0x40086602 if struct.calcsize("l") == 8 else 0x40046602


def spread(folder: Path) -> None:
    """Ask the file system to put each folder made in ``folder`` in a block group of its own.

    Best effort and idempotent (a folder that has the flag is left as it is):
    ignored where the flag is unknown or the folder cannot be opened.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # one ioctl to read the flags; a second only to set it
            flags = _get(fd)
            if not flags & FS_TOPDIR_FL:
                _set(fd, flags | FS_TOPDIR_FL)
    finally:
        os.close(fd)


def is_spread(folder: Path) -> bool:
    """Whether ``folder`` carries ``FS_TOPDIR_FL`` (False where flags cannot be read)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        return bool(_get(fd) & FS_TOPDIR_FL)
    except OSError:
        return False
    finally:
        os.close(fd)


def _get(fd: int) -> int:
    import fcntl  # not on every system; only reached on Linux

    buf = fcntl.ioctl(fd, _GETFLAGS, struct.pack("i", 0))
    return int(struct.unpack("i", buf[:4])[0])


def _set(fd: int, flags: int) -> None:
    import fcntl

    fcntl.ioctl(fd, _SETFLAGS, struct.pack("i", flags))
