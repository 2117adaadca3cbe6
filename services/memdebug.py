"""An opt-in allocation trace for finding what a long-running service keeps.

With ``SWARMD_TRACEMALLOC_DIR`` set, a service started by ``swarmd serve``
traces Python allocations (``tracemalloc``, ``SWARMD_TRACEMALLOC_FRAMES``
frames deep, 10 by default) and, on each ``SIGUSR2``, collects garbage and
writes a snapshot ``<dir>/<service>-<pid>-<n>.tracemalloc``. Two snapshots
compared (``Snapshot.compare_to``) show which allocation sites grew; see
``benchmarks/fuzz_rss.py``. Off by default: tracing slows every allocation.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import os
import signal
import tracemalloc
from pathlib import Path

__all__ = ["ENV_DIR", "install_from_env"]

ENV_DIR = "SWARMD_TRACEMALLOC_DIR"
ENV_FRAMES = "SWARMD_TRACEMALLOC_FRAMES"

log = logging.getLogger(__name__)


def install_from_env(service: str) -> Path | None:
    """Start tracing and snapshot on SIGUSR2 when ``SWARMD_TRACEMALLOC_DIR`` is set."""
    target = os.environ.get(ENV_DIR, "").strip()
    if not target or not hasattr(signal, "SIGUSR2"):
        return None
    folder = Path(target)
    folder.mkdir(parents=True, exist_ok=True)
    if not tracemalloc.is_tracing():
        tracemalloc.start(max(1, int(os.environ.get(ENV_FRAMES, "10") or 10)))
    counter = itertools.count(1)

    def dump() -> None:
        gc.collect()
        path = folder / f"{service}-{os.getpid()}-{next(counter)}.tracemalloc"
        tmp = path.with_suffix(".tmp")
        tracemalloc.take_snapshot().dump(str(tmp))
        tmp.rename(path)  # readers see whole files only
        log.warning("allocation snapshot written to %s", path)

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, dump)
    log.warning("tracing allocations; SIGUSR2 writes a snapshot into %s", folder)
    return folder
