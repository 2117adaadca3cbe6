"""``swarmd serve KIND``: one service alone (or the A2A gateway).

Kept apart from the other commands so that a service's process imports only
what it serves: :func:`swarmd.clients.cli.main` builds a parser of this
command alone when the command line is ``swarmd [-v] serve ...``, and never
imports :mod:`.commands` (the client, the renderer, the orchestrator's
planning) for it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import grpc

from swarmd.clients.cli.basics import model_spec, settings_of
from swarmd.clients.errors import SwarmdClientError
from swarmd.clients.launcher import SERVICE_KINDS, serve
from swarmd.services.errors import SwarmdError

__all__ = ["add_serve_arguments", "cmd_serve"]


def add_serve_arguments(sub: Any) -> None:
    """Add ``serve`` to the CLI's subcommands (``sub``, from ``add_subparsers``)."""
    srv = sub.add_parser("serve", help="run one service alone")
    srv.add_argument("kind", choices=(*SERVICE_KINDS, "a2a"))
    srv.add_argument("--listen", metavar="HOST:PORT")
    srv.add_argument("--result-store", metavar="HOST:PORT", help="(orchestrator) the result store")
    srv.add_argument("--executor", metavar="HOST:PORT", help="(orchestrator) the executor service")
    srv.add_argument("--advertise", metavar="HOST:PORT", help="(orchestrator) address executors use to reach it")
    srv.add_argument("--db", help="(result-store) SQLite database path")
    srv.add_argument("--journal", help="(orchestrator) write-ahead journal path (default .swarmd/orchestrator-journal.db)")
    srv.add_argument("--default-executor", help="(executor) plugin used when a request names none")
    srv.add_argument("--config", help="settings file (YAML, JSON or TOML)")
    a2a = srv.add_argument_group("A2A gateway (serve a2a)")
    a2a.add_argument("--orchestrator", metavar="HOST:PORT", help="the orchestrator the gateway fronts")
    a2a.add_argument("--repository", action="append", default=[], metavar="NAME=PATH|GIT_URL",
                     help="a repository requests may name (repeatable); a git URL is cloned into --workspace")
    a2a.add_argument("--workspace", metavar="DIR", help="where git-URL repositories are cloned (default .swarmd/a2a-repositories)")
    a2a.add_argument("--token", action="append", default=[], metavar="TOKEN",
                     help="bearer token a caller must send (repeatable, or $SWARMD_A2A_TOKENS comma-separated)")
    a2a.add_argument("--model", help="model when a request names none (default $SWARMD_DEFAULT_MODEL)")
    a2a.add_argument("--public-url", metavar="URL", help="base URL the Agent Card advertises (default http://LISTEN)")
    stls = srv.add_argument_group("TLS (the service's tls settings; also for its channels to peers)")
    stls.add_argument("--tls-cert", metavar="PEM", help="certificate chain: listen with TLS only")
    stls.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    stls.add_argument("--tls-ca", metavar="PEM", help="CA bundle that peers (and clients, with mTLS) are verified with")
    stls.add_argument("--tls-client-auth", choices=("none", "require"), help="require: mutual TLS")
    stls.add_argument("--tls-server-name", metavar="NAME", help="name expected in peers' certificates")


async def cmd_serve(args: argparse.Namespace) -> int:
    if args.kind == "a2a":
        from swarmd.services.a2a import serve_gateway

        if not args.orchestrator:
            raise SwarmdClientError(grpc.StatusCode.INVALID_ARGUMENT, "serve a2a needs --orchestrator HOST:PORT")
        env_tokens = [t.strip() for t in os.environ.get("SWARMD_A2A_TOKENS", "").split(",") if t.strip()]
        await serve_gateway(
            listen=args.listen or "0.0.0.0:8080",
            orchestrator=args.orchestrator,
            repositories=args.repository,
            workspace=args.workspace,
            tokens=args.token + env_tokens,
            default_model=model_spec(args.model or os.environ.get("SWARMD_DEFAULT_MODEL", "")),
            public_url=args.public_url or "",
            settings=settings_of(args).a2a,
        )
        return 0
    settings = settings_of(args)
    section = {"orchestrator": settings.orchestrator, "executor": settings.executor, "result-store": settings.result_store}[
        args.kind
    ]
    if args.listen:
        section.listen = args.listen
    if args.kind == "orchestrator":
        if args.result_store:
            settings.orchestrator.result_store_address = args.result_store
        if args.executor:
            settings.orchestrator.executor_address = args.executor
        if args.advertise:
            settings.orchestrator.advertise_address = args.advertise
        if args.journal:
            settings.orchestrator.journal_path = Path(args.journal)
    if args.kind == "result-store" and args.db:
        settings.result_store.db_path = Path(args.db)
    if args.kind == "executor" and args.default_executor:
        settings.executor.default_executor = args.default_executor
    for flag, field in (("tls_cert", "cert_file"), ("tls_key", "key_file"), ("tls_ca", "ca_file")):
        if getattr(args, flag, None):
            setattr(section.tls, field, Path(getattr(args, flag)))
    if getattr(args, "tls_client_auth", None):
        section.tls.client_auth = args.tls_client_auth
    if getattr(args, "tls_server_name", None):
        section.tls.server_name = args.tls_server_name
    try:
        await serve(args.kind, settings)
    except SwarmdError as exc:
        raise SwarmdClientError(exc.code, exc.message) from None
    return 0
