"""Implementations of the CLI's subcommands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import grpc

from swarmd.clients.cli.agent import cmd_agent
from swarmd.clients.cli.basics import ADDRESS_ENV, model_spec, settings_of
from swarmd.clients.cli.listing import list_request
from swarmd.clients.cli.local import cmd_auth_token, cmd_plugins, cmd_worktrees
from swarmd.clients.cli.render import (
    Progress,
    format_plan,
    format_subtask,
    format_summary,
    format_time,
    state_name,
    swarm_json,
)
from swarmd.clients.cli.serving import cmd_serve
from swarmd.clients.client import SwarmdClient
from swarmd.clients.credentials import resolve_token
from swarmd.clients.errors import SwarmdClientError
from swarmd.clients.launcher import EmbeddedSwarmd
from swarmd.clients.plan_files import load_plan, load_repository_collapse
from swarmd.clients.tls import ClientTls
from swarmd.services.errors import SwarmdError
from swarmd.services.orchestrator.options import check_client_options
from swarmd.v1 import common_pb2, orchestrator_pb2

__all__ = ["COMMANDS", "build_config"]



def build_config(args: argparse.Namespace) -> common_pb2.SwarmConfig:
    config = common_pb2.SwarmConfig(
        model=model_spec(args.model or os.environ.get("SWARMD_DEFAULT_MODEL", "")),
        strategy=args.strategy,
        executor=args.executor or "",
        max_subagents=args.max_subagents,
        max_steps_per_subagent=args.max_steps,
        max_concurrent=args.max_concurrent,
        subagent_timeout_secs=args.timeout,
        max_total_tool_calls=args.max_tool_calls,
        max_total_tokens=args.max_tokens,
        max_cost_usd=args.max_cost,
        repo_path=str(Path(args.repo).resolve()),
    )
    if args.max_retries is not None:
        config.max_retries = args.max_retries
    if args.request_delay_ms is not None:
        config.request_delay_ms = args.request_delay_ms
    if args.no_worktrees:
        config.worktree_enabled = False
    if args.no_merge:
        config.auto_merge = False
    if args.no_cache:
        config.cache_enabled = False
    if args.run_anyway:
        config.dependency_failure_policy = common_pb2.DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY
    if args.speculate:
        config.speculate = args.speculate
    config.speculate_models.extend(model_spec(m) for m in args.speculate_model or [])
    if args.health_check:
        config.collapse.checks.add(name="command", options={"command": args.health_check})
    for name in args.collapse_check or []:
        config.collapse.checks.add(name=name)
    if config.collapse.checks:
        config.collapse.enabled = True
    if args.record:
        # Relative: under REPO/.swarmd/ (the only place a client may have a
        # running orchestrator record to; embedded services record anywhere).
        record = Path(args.record)
        config.executor_options["record"] = str(record.resolve() if record.is_absolute() else record)
    for item in args.option or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SwarmdClientError(grpc.StatusCode.INVALID_ARGUMENT, f"--option {item!r} must be KEY=VALUE")
        config.executor_options[key] = value
    return config


def _operator_options(config: common_pb2.SwarmConfig) -> dict[str, str]:
    """Take out of ``config`` the options only an operator may set (see
    :mod:`swarmd.services.orchestrator.options`). The embedded services are
    the user's own, so there they become the services' settings; a running
    orchestrator refuses them from a client."""
    moved: dict[str, str] = {}
    for name, value in list(config.executor_options.items()):
        probe = common_pb2.SwarmConfig(repo_path=config.repo_path, executor_options={name: value})
        try:
            check_client_options(probe)
        except SwarmdError:
            moved[name] = value
            del config.executor_options[name]
    return moved


def _client_tls(args: argparse.Namespace) -> ClientTls:
    """TLS from the flags, each falling back to its environment variable."""
    env = ClientTls.from_env()

    def path(flag: str) -> Path | None:
        value = getattr(args, flag, None)
        return Path(value) if value else None

    return ClientTls(
        ca_file=path("tls_ca") or env.ca_file,
        cert_file=path("tls_cert") or env.cert_file,
        key_file=path("tls_key") or env.key_file,
        server_name=getattr(args, "tls_server_name", None) or env.server_name,
        enabled=env.enabled,
    )


def _client_token(args: argparse.Namespace) -> str:
    """The bearer token from the flags, the environment or the settings file."""
    config_file = None
    if getattr(args, "config", None) or os.environ.get("SWARMD_CONFIG"):
        config_file = settings_of(args).client.token_file
    try:
        return resolve_token(
            getattr(args, "token", None), getattr(args, "token_file", None), config_token_file=config_file
        )
    except ValueError as exc:
        raise SwarmdClientError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None


@contextlib.asynccontextmanager
async def _connect(
    args: argparse.Namespace, config: common_pb2.SwarmConfig | None = None
) -> AsyncIterator[tuple[SwarmdClient, EmbeddedSwarmd | None]]:
    """A client to a running orchestrator, or to embedded services on the repo's
    database (which take the operator options out of ``config``)."""
    address = getattr(args, "orchestrator", None) or os.environ.get(ADDRESS_ENV)
    if address:
        client = SwarmdClient(
            address, result_store=getattr(args, "result_store", None), tls=_client_tls(args), token=_client_token(args)
        )
        try:
            yield client, None
        finally:
            await client.aclose()
        return
    settings = settings_of(args)
    repo = Path(getattr(args, "repo", ".") or ".").resolve()
    db = getattr(args, "db", None) or (
        settings.result_store.db_path
        if settings.result_store.db_path.is_absolute()
        else repo / settings.result_store.db_path
    )
    await _hide_state_dir(repo, Path(db))
    journal = settings.orchestrator.journal_path
    if journal is not None and not journal.is_absolute():
        settings.orchestrator.journal_path = repo / journal
    if config is not None and config.executor:
        # One process, one run: the executor it names is the embedded service's
        # default, so a blocked or absent `local` does not stop it starting.
        settings.executor.default_executor = config.executor
    if config is not None:
        operator = _operator_options(config)
        settings.executor.options.update(operator)
        settings.orchestrator.decomposition_options.update(operator)
    embedded = EmbeddedSwarmd(settings, db_path=db)
    try:
        await embedded.start()
    except SwarmdError as exc:
        raise SwarmdClientError(exc.code, exc.message) from None
    client = SwarmdClient(embedded.orchestrator_address, result_store=embedded.result_store_address, tls=ClientTls())
    try:
        yield client, embedded
    finally:
        await client.aclose()
        await embedded.stop(grace=1.0)


async def _hide_state_dir(repo: Path, db: Path) -> None:
    """Keep the embedded database (REPO/.swarmd/) out of the user's ``git status``."""
    from swarmd.plugins.runtime.worktree import WorktreeManager

    if db.resolve().is_relative_to(repo / ".swarmd") and await WorktreeManager.is_git_repo(repo):
        await WorktreeManager(repo).exclude_swarmd_dir()


async def cmd_run(args: argparse.Namespace) -> int:
    if bool(args.task) == bool(args.plan):
        raise SwarmdClientError(grpc.StatusCode.INVALID_ARGUMENT, "give either a TASK or --plan FILE (not both)")
    plan, description = (load_plan(args.plan) if args.plan else (None, ""))
    task = args.task or description
    if not (args.model or os.environ.get("SWARMD_DEFAULT_MODEL")):
        raise SwarmdClientError(
            grpc.StatusCode.INVALID_ARGUMENT, "no model: pass --model provider/model (e.g. openai/gpt-4o)"
        )
    config = build_config(args)
    if not config.collapse.enabled and not (plan is not None and plan.collapse.enabled):
        default = load_repository_collapse(config.repo_path)  # flags, then the plan, then the repository
        if default is not None:
            config.collapse.CopyFrom(default)
    async with _connect(args, config) as (client, _embedded):
        reply = await client.submit(task=task, plan=plan, config=config, dry_run=args.dry_run)
        swarm = reply.swarm
        if args.dry_run:
            if args.json:
                print(swarm_json(swarm))
            else:
                print(format_plan(swarm, reply.preflight))
            return 0 if reply.preflight.is_valid else 1
        if not args.json:
            print(f"swarm {swarm.id} submitted", flush=True)
        final = await _follow(client, swarm.id, args)
    print(swarm_json(final) if args.json else "\n" + format_summary(final))
    return 0 if final.state == common_pb2.SWARM_STATE_SUCCEEDED else 1


async def _follow(client: SwarmdClient, swarm_id: str, args: argparse.Namespace) -> common_pb2.Swarm:
    """Show a swarm's progress until it ends; an interrupted command (Ctrl-C,
    SIGTERM, SIGHUP) cancels the swarm first, so nothing is left running."""
    progress = None if args.json else Progress(live=None if not args.plain else False)
    try:
        async for event in client.watch(swarm_id):
            if progress is not None:
                progress.handle(event)
    except (KeyboardInterrupt, asyncio.CancelledError):
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        with contextlib.suppress(SwarmdClientError):
            await client.cancel(swarm_id, "interrupted by the user")
        raise
    return await client.get(swarm_id)


async def cmd_resume(args: argparse.Namespace) -> int:
    async with _connect(args) as (client, _embedded):
        reply = await client.resume(args.swarm_id)
        if not args.json:
            note = " (it was running here already)" if reply.already_running else ""
            print(f"swarm {args.swarm_id} resumed{note}", flush=True)
        final = await _follow(client, args.swarm_id, args)
    print(swarm_json(final) if args.json else "\n" + format_summary(final))
    return 0 if final.state == common_pb2.SWARM_STATE_SUCCEEDED else 1


async def cmd_status(args: argparse.Namespace) -> int:
    async with _connect(args) as (client, _):
        if args.subtask_id:
            reply = await client.get_subtask(args.swarm_id, args.subtask_id)
            print(_json(reply) if args.json else format_subtask(reply.subtask, reply.swarm_state))
            return 0
        swarm = await client.get(args.swarm_id)
    if args.json:
        print(swarm_json(swarm))
        return 0
    print(format_summary(swarm))
    print()
    for st in swarm.subtasks:
        status = common_pb2.SubTaskStatus.Name(st.status).removeprefix("SUB_TASK_STATUS_").lower()
        reason = f" - {st.status_reason}" if st.status_reason else ""
        tool = f" > {st.current_tool}" if st.current_tool else ""
        print(f"  {st.subtask.id:<24} {status:<10} steps {st.steps:<4} tools {st.tool_calls:<4}{tool}{reason}")
    return 0


async def cmd_watch(args: argparse.Namespace) -> int:
    async with _connect(args) as (client, _):
        progress = Progress(live=False)
        async for event in client.watch(
            args.swarm_id, after_sequence=args.after, subtask_ids=args.subtask_ids, event_kinds=args.event_kinds
        ):
            if args.json:
                from google.protobuf import json_format

                print(json_format.MessageToJson(event, indent=None, preserving_proto_field_name=True), flush=True)
            else:
                progress.handle(event)
    return 0


async def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel; the exit code and text say what the swarm (or subtask) is now:
    0 when it is finished (cancelled now, or already before), 1 when it has
    not stopped yet."""
    async with _connect(args) as (client, _):
        if args.subtask_id:
            reply = await client.cancel_subtask(args.swarm_id, args.subtask_id, args.reason)
            swarm = await client.get(args.swarm_id)
            status = next(
                (s.status for s in swarm.subtasks if s.subtask.id == args.subtask_id), reply.status
            )
            name = common_pb2.SubTaskStatus.Name(status).removeprefix("SUB_TASK_STATUS_").lower()
            done = status in _FINISHED_SUBTASK
            note = " (already finished)" if reply.already_finished else ("" if done else " (not stopped yet)")
            print(f"subtask {args.subtask_id}: {name}{note}")
            return 0 if done else 1
        reply = await client.cancel(args.swarm_id, args.reason)
        swarm = await client.get(args.swarm_id)
    done = swarm.state in _FINISHED_SWARM
    note = " (already finished)" if reply.already_finished else ("" if done else " (cancel requested; not stopped yet)")
    print(f"swarm {args.swarm_id}: {state_name(swarm.state)}{note}")
    return 0 if done else 1


_FINISHED_SWARM = frozenset(
    {common_pb2.SWARM_STATE_SUCCEEDED, common_pb2.SWARM_STATE_FAILED, common_pb2.SWARM_STATE_CANCELLED}
)
_FINISHED_SUBTASK = frozenset(
    {
        common_pb2.SUB_TASK_STATUS_COMPLETED,
        common_pb2.SUB_TASK_STATUS_FAILED,
        common_pb2.SUB_TASK_STATUS_CANCELLED,
        common_pb2.SUB_TASK_STATUS_TIMED_OUT,
        common_pb2.SUB_TASK_STATUS_SKIPPED,
    }
)


def _json(message: Any) -> str:
    from google.protobuf import json_format

    return str(json_format.MessageToJson(message, preserving_proto_field_name=True, indent=2))


async def cmd_list(args: argparse.Namespace) -> int:
    request = list_request(args)
    pages = []
    async with _connect(args) as (client, _):
        while True:
            reply = await client.list(
                page_size=request.page_size, page_token=request.page_token,
                filter=request.filter, order_by=request.order_by,
            )
            pages.append(reply)
            if not args.all or not reply.next_page_token:
                break
            request.page_token = reply.next_page_token
    swarms = [s for page in pages for s in page.swarms]
    if args.json:
        print(_json(orchestrator_pb2.ListSwarmsResponse(swarms=swarms, next_page_token=pages[-1].next_page_token)))
        return 0
    if not swarms:
        print("no swarms")
    for s in swarms:
        print(
            f"{s.id}  {state_name(s.state):<10} {s.completed}/{s.subtask_count} ok  {s.failed} failed  "
            + "".join(f"{n} {w}  " for n, w in ((s.cancelled, "cancelled"), (s.skipped, "skipped")) if n)
            + f"{s.execution_time_ms / 1000:7.1f}s  {format_time(s.created_at)}  {s.task[:60]!r}"
        )
    if pages[-1].next_page_token:
        print(f"more: swarmd list ... --page-token {pages[-1].next_page_token} (or --all)")
    return 0


async def cmd_cache(args: argparse.Namespace) -> int:
    async with _connect(args) as (client, _):
        if args.action == "clear":
            removed = await client.cache_clear()
            print(f"removed {removed} cache entries")
            return 0
        stats = await client.cache_stats()
    print(
        f"entries {stats.current_entries}, bytes {stats.current_bytes}, hits {stats.hits}, misses {stats.misses}, "
        f"evictions {stats.evictions}, expired {stats.expired_removed}, hit rate {stats.hit_rate:.0%}"
    )
    return 0


Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]
COMMANDS: dict[str, Command] = {
    "run": cmd_run,
    "status": cmd_status,
    "watch": cmd_watch,
    "cancel": cmd_cancel,
    "resume": cmd_resume,
    "list": cmd_list,
    "serve": cmd_serve,  # the one command main() may import without this module
    "plugins": cmd_plugins,
    "worktrees": cmd_worktrees,
    "auth-token": cmd_auth_token,
    "cache": cmd_cache,
    "agent": cmd_agent,
}


# Allow `python -m swarmd.clients.cli.commands` to be harmless.
if __name__ == "__main__":  # pragma: no cover
    sys.exit("use the `swarmd` command")
