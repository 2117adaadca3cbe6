"""The executor service: serves ``swarmd.v1.ExecutorService`` by delegating to
executor plugins (``local``, ``remote``, or a third party's).

Each plugin named in a request is instantiated once, lazily, with an
:class:`~swarmd.plugins.ExecutorContext`; all are closed when the host stops.
"""

from __future__ import annotations

from swarmd.services.executor.servicer import ExecutorServicer, build_executor

__all__ = ["ExecutorServicer", "build_executor"]
