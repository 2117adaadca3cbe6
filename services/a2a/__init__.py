"""swarmd as an Agent2Agent (A2A) agent: a thin gateway in front of the
orchestrator's public gRPC API, built on the official ``a2a-sdk``.

    swarmd serve a2a --listen 0.0.0.0:8080 --orchestrator orchestrator:50051 \\
        --repository calc=/srv/repos/calc --repository web=https://git.example/web.git

Modules, in the order a request meets them:

* :mod:`.server` — the HTTP server (the SDK's JSON-RPC and HTTP+JSON routes,
  the card) and :class:`A2AGateway`;
* :mod:`.auth` — who may call it (the services' ``auth`` settings: 401, 403,
  the caller's token forwarded to the orchestrator);
* :mod:`.card` — the Agent Card;
* :mod:`.handler` — each A2A method as orchestrator calls;
* :mod:`.requests` — a message as a swarm submission (task, plan, settings);
* :mod:`.events` — swarms and their events as tasks, status and artifact updates;
* :mod:`.errors` — gRPC failures as A2A errors;
* :mod:`.repositories` — the repositories the gateway may work on.

The SDK is the optional extra ``swarmd[a2a]``; :func:`serve_gateway` says so
when it is missing. The gateway keeps nothing itself: a task is a swarm.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from swarmd.clients.errors import SwarmdClientError

if TYPE_CHECKING:
    from swarmd.services.config import A2ASettings

__all__ = ["require_sdk", "serve_gateway"]


def require_sdk() -> None:
    """Fail with FAILED_PRECONDITION when the A2A SDK or its HTTP server is missing."""
    missing = [m for m in ("a2a", "starlette", "sse_starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise SwarmdClientError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"the A2A gateway needs the a2a extra (missing: {', '.join(missing)}): pip install 'swarmd[a2a]'",
        )


async def serve_gateway(
    *,
    listen: str,
    orchestrator: str,
    repositories: list[str],
    workspace: str | None = None,
    tokens: list[str] | None = None,
    default_model: str = "",
    public_url: str = "",
    settings: A2ASettings | None = None,
) -> None:
    """Run the gateway until SIGTERM/SIGINT (what ``swarmd serve a2a`` does)."""
    require_sdk()
    from swarmd.clients.tls import ClientTls
    from swarmd.services._host import until_signalled
    from swarmd.services.a2a.repositories import Repositories, RepositoryError
    from swarmd.services.a2a.server import A2AGateway, GatewaySettings, workspace_default
    from swarmd.services.auth.settings import AuthSettings

    try:
        repos = Repositories.parse(repositories, Path(workspace) if workspace else workspace_default())
        gateway = A2AGateway(GatewaySettings(
            orchestrator=orchestrator, repositories=repos, listen=listen, tokens=list(tokens or []),
            default_model=default_model, public_url=public_url, tls=ClientTls.from_env(),
            auth=settings.auth if settings is not None else AuthSettings(),
            public_card=settings.public_card if settings is not None else True,
        ))
        await gateway.start()
    except (RepositoryError, ValueError) as exc:
        raise SwarmdClientError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
    print(f"swarmd a2a listening on {gateway.address}", flush=True)
    try:
        await until_signalled()
    finally:
        await gateway.stop()
