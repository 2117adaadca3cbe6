"""The CLI's subcommands that act on this machine alone, with no service.

``swarmd plugins`` lists what plugin loading found; ``swarmd worktrees``
lists and prunes the worktrees swarmd left in a repository; ``swarmd
auth-token new|hash`` makes a token and the token-file entry that lists it
(:mod:`swarmd.services.auth.tokens`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import grpc

from swarmd.clients.errors import SwarmdClientError

__all__ = ["cmd_auth_token", "cmd_plugins", "cmd_worktrees"]


async def cmd_plugins(args: argparse.Namespace) -> int:
    from swarmd.plugins.manager import load_plugins

    plugins = load_plugins()
    rows: dict[str, Any] = {
        "plugins": [{"name": p.name, "module": p.module, "distribution": p.distribution} for p in plugins.loaded],
        "blocked": plugins.blocked,
        "blocked_found": plugins.blocked_found,
    }
    for kind in ("executors", "providers", "tools", "health_checks"):
        rows[kind] = [
            {"name": r.name, "class": f"{r.cls.__module__}.{r.cls.__qualname__}", "plugin": r.plugin, "distribution": r.distribution}
            for r in getattr(plugins, kind)
        ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("plugins:")
    for p in rows["plugins"]:
        print(f"  {p['name']:<16} {p['module']:<40} {p['distribution'] or '(registered from code)'}")
    if rows["blocked"]:
        print(f"blocked: {', '.join(rows['blocked'])}")
        for line in plugins.blocked_found or ["(matched nothing)"]:
            print(f"  {line}")
    for kind in ("executors", "providers", "tools", "health_checks"):
        print(f"{kind.replace('_', ' ')}:")
        for r in rows[kind]:
            print(f"  {r['name']:<16} {r['class']:<56} from {r['plugin']} ({r['distribution'] or 'local'})")
    return 0


async def cmd_worktrees(args: argparse.Namespace) -> int:
    from swarmd.plugins.runtime.worktree import WorktreeManager

    repo = Path(args.repo).resolve()
    if not await WorktreeManager.is_git_repo(repo):
        raise SwarmdClientError(grpc.StatusCode.FAILED_PRECONDITION, f"{repo} is not a git repository")
    manager = WorktreeManager(repo)
    if args.action == "prune":
        report = await manager.prune()
        for path in report.removed_worktrees:
            print(f"removed worktree {path}")
        for branch in report.deleted_branches:
            print(f"deleted branch {branch}")
        for branch, reason in report.kept:
            print(f"kept {branch}: {reason}")
        if not (report.removed_worktrees or report.deleted_branches or report.kept):
            print("nothing to prune")
        return 0
    items = await manager.list()
    if not items:
        print("no swarmd worktrees")
    for item in items:
        state = "missing" if item.missing else ("clean" if item.clean else "uncommitted changes")
        flags = [state, "merged" if item.merged else ("has unmerged work" if item.has_own_work else "no work")]
        if item.in_use:
            flags.append(f"in use ({item.locked_reason})" if item.locked_reason else "in use")
        if item.lazy:
            flags.append("lazy checkout (files not used yet are only in its index)")
        print(f"{item.branch}  {item.path or '-'}  {', '.join(flags)}")
    return 0


async def cmd_auth_token(args: argparse.Namespace) -> int:
    """``new``: a fresh token (stderr) and its entry (stdout); ``hash``: the entry of a token read from stdin."""
    import sys

    import yaml

    from swarmd.services.auth.tokens import generate_token, hash_token, parse_token_entries

    if args.action == "new":
        token = generate_token()
    else:
        token = sys.stdin.readline().strip()
        if not token:
            raise SwarmdClientError(grpc.StatusCode.INVALID_ARGUMENT, "no token on standard input")
    entry = {"sha256": hash_token(token), "subject": args.subject, "role": args.role}
    if args.tenant:
        entry["tenant"] = args.tenant
    try:
        parse_token_entries([entry], "the entry")
    except ValueError as exc:
        raise SwarmdClientError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
    if args.action == "new":
        print(f"token (give it to the caller, it is not stored): {token}", file=sys.stderr)
    print(yaml.safe_dump([entry], sort_keys=False), end="")
    return 0
