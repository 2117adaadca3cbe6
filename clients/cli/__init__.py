"""The ``swarmd`` command line.

    swarmd run "TASK" | --plan FILE   run a swarm (embedded services unless --orchestrator)
    swarmd serve KIND --listen H:P    run one service alone
    swarmd status|watch|cancel|list   inspect and control swarms
    swarmd resume ID                  continue an interrupted swarm
    swarmd plugins                    list loaded plugins and where they come from
    swarmd worktrees list|prune       the sub-agents' git worktrees
    swarmd auth-token new|hash        a bearer token and its token-file entry
    swarmd cache stats|clear          the result cache
    swarmd agent run-subtask          inside a sub-agent pod (the kubernetes executor's)

Exit codes: 0 success; 1 the swarm failed or was cancelled; 2 bad input
(usage, invalid plan or configuration); 3 a service could not be reached or
another error occurred; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM);
129 hung up (SIGHUP, the terminal was closed). An interrupted ``swarmd run``
cancels its swarm first; a closed stdout does not stop it (see
:mod:`.guard`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from swarmd.clients.cli.guard import Terminated, run_guarded
from swarmd.clients.errors import SwarmdClientError
from swarmd.plugins.manager import PluginLoadError

__all__ = ["main"]


def build_parser(*, serve_only: bool = False) -> argparse.ArgumentParser:
    """The CLI's parser; ``serve_only``: of ``serve`` alone (what a service's process imports)."""
    parser = argparse.ArgumentParser(
        prog="swarmd",
        description="Run a swarm of AI coding sub-agents in parallel on one task.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if serve_only:
        from swarmd.clients.cli.serving import add_serve_arguments

        add_serve_arguments(sub)
    else:
        from swarmd.clients.cli.arguments import add_arguments

        add_arguments(sub)
    return parser


def _command_word(argv: Sequence[str]) -> str:
    """The subcommand's word: the first argument that is not ``-v``/``--verbose``."""
    for word in argv:
        if word in ("-v", "-vv", "-vvv", "--verbose"):
            continue
        return word
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    serving = _command_word(argv) == "serve"
    args = build_parser(serve_only=serving).parse_args(argv)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    command: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]
    if serving:
        from swarmd.clients.cli.serving import cmd_serve as command
    else:
        from swarmd.clients.cli.commands import COMMANDS

        command = COMMANDS[args.command]
    try:
        return run_guarded(command(args))
    except SwarmdClientError as exc:
        print(f"swarmd: error: {exc.code.name}: {exc.message}", file=sys.stderr)
        return 2 if exc.code.name in ("INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION") else 3
    except PluginLoadError as exc:
        print(f"swarmd: plugin error: {exc}", file=sys.stderr)
        return 3
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("swarmd: interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"swarmd: ended by {exc}", file=sys.stderr)
        return 128 + exc.signum
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
