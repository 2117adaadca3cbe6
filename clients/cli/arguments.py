"""The CLI's command-line grammar: every subcommand's arguments (the commands
themselves live in :mod:`swarmd.clients.cli.commands`)."""

from __future__ import annotations

import argparse

from swarmd.clients.cli.agent import add_agent_arguments
from swarmd.clients.cli.basics import ADDRESS_ENV
from swarmd.clients.cli.listing import add_list_arguments
from swarmd.clients.cli.serving import add_serve_arguments
from swarmd.services.orchestrator.planning import parse_strategy as _parse_strategy
from swarmd.services.orchestrator.speculation.variants import MAX_VARIANTS
from swarmd.v1 import common_pb2

__all__ = ["add_arguments", "parse_strategy"]


def parse_strategy(text: str) -> int:
    """argparse type for --strategy: auto, domain, data, stage or none."""
    try:
        return _parse_strategy(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _variants(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if not 1 <= value <= MAX_VARIANTS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_VARIANTS}, not {value}")
    return value


def _connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--orchestrator", metavar="HOST:PORT", help=f"a running orchestrator (or ${ADDRESS_ENV}); default: embedded services")
    p.add_argument("--result-store", metavar="HOST:PORT", help="a running result store (cache commands)")
    p.add_argument("--repo", default=".", help="target repository (embedded database in REPO/.swarmd/)")
    p.add_argument("--db", help="SQLite database for embedded services")
    p.add_argument("--config", help="settings file (YAML, JSON or TOML)")
    tls = p.add_argument_group("TLS (to a running orchestrator; embedded services use plaintext on loopback)")
    tls.add_argument("--tls-ca", metavar="PEM", help="CA bundle to verify the server with (or $SWARMD_TLS_CA)")
    tls.add_argument("--tls-cert", metavar="PEM", help="client certificate for mutual TLS (or $SWARMD_TLS_CERT)")
    tls.add_argument("--tls-key", metavar="PEM", help="key of --tls-cert (or $SWARMD_TLS_KEY)")
    tls.add_argument("--tls-server-name", metavar="NAME", help="name expected in the server's certificate")
    auth = p.add_argument_group("authentication (to a running orchestrator that requires it)")
    auth.add_argument("--token", metavar="TOKEN", help="bearer token (or $SWARMD_TOKEN)")
    auth.add_argument("--token-file", metavar="PATH",
                      help="file holding the bearer token (or $SWARMD_TOKEN_FILE, or client.token_file in --config)")


def add_arguments(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = sub.add_parser("run", help="run a swarm on a task or a plan")
    run.add_argument("task", nargs="?", help="the task for the model to decompose")
    run.add_argument("--plan", help="explicit plan file (YAML or JSON)")
    run.add_argument("-m", "--model", help="provider/model, e.g. openai/gpt-4o or replay/cassette.jsonl")
    run.add_argument("-s", "--strategy", type=parse_strategy, default=common_pb2.DECOMPOSITION_STRATEGY_AUTOMATIC,
                     help="auto | domain | data | stage | none")
    run.add_argument("--executor", help="executor plugin (default: the executor service's default, local)")
    run.add_argument("--max-subagents", type=_positive, default=0, help="most subtasks in a plan (default 100)")
    run.add_argument("--max-steps", type=_positive, default=0, help="model calls per sub-agent (default 100)")
    run.add_argument("--max-concurrent", type=_positive, default=0, help="sub-agents at once (default 8)")
    run.add_argument("--timeout", type=_positive, default=0, help="idle timeout per step in seconds (default 600)")
    run.add_argument("--max-tool-calls", type=_positive, default=0, help="tool calls across the swarm (default 1500)")
    run.add_argument("--max-tokens", type=_positive, default=0, help="tokens across the swarm (default unlimited)")
    run.add_argument("--max-cost", type=float, default=0.0, help="US dollars across the swarm (default unlimited)")
    run.add_argument("--max-retries", type=_positive, help="retries of transient failures (default 3)")
    run.add_argument("--request-delay-ms", type=_positive, help="start stagger in ms (default 250)")
    run.add_argument("--no-worktrees", action="store_true", help="run sub-agents in the repository itself")
    run.add_argument("--no-merge", action="store_true", help="keep branches instead of merging them back")
    run.add_argument("--no-cache", action="store_true", help="neither read nor write the result cache")
    run.add_argument("--run-anyway", action="store_true", help="run dependents of failed subtasks anyway")
    run.add_argument("--health-check", metavar="COMMAND",
                     help="run the collapse controller with this command as the branches' health check "
                          "(e.g. 'python -m pytest -x -q'); a plan file's health_check/collapse otherwise")
    run.add_argument("--collapse-check", action="append", metavar="NAME",
                     help="run the collapse controller with this named health check (python-compile, none, "
                          "a plugin's; repeatable)")
    run.add_argument("--speculate", type=_variants, metavar="N",
                     help="race N variants of every mutating subtask a plan file leaves unset (different "
                          "strategy prompts, own branches); the first to succeed and pass the health checks "
                          f"merges, the others are cancelled (1 = none, at most {MAX_VARIANTS})")
    run.add_argument("--speculate-model", action="append", metavar="PROVIDER/MODEL",
                     help="a model for the speculative variants, taken in turn (repeatable; default: --model)")
    run.add_argument("--record", metavar="CASSETTE",
                     help="record every model response to a cassette (JSONL); relative: in REPO/.swarmd/")
    run.add_argument("--option", action="append", metavar="KEY=VALUE", help="executor option (repeatable)")
    run.add_argument("--dry-run", action="store_true", help="print the plan, stages and pre-flight report only")
    run.add_argument("--json", action="store_true", help="print the full result as JSON")
    run.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    _connection_args(run)

    for name, text in (("status", "show a swarm, or one of its subtasks"), ("watch", "stream a swarm's events")):
        p = sub.add_parser(name, help=text)
        p.add_argument("swarm_id")
        if name == "status":
            p.add_argument("subtask_id", nargs="?",
                           help="show only this subtask: status, result, commit and diff")
        p.add_argument("--json", action="store_true")
        if name == "watch":
            p.add_argument("--after", type=_positive, default=0, help="resume after this sequence number")
            p.add_argument("--subtask", dest="subtask_ids", action="append", default=[], metavar="ID",
                           help="only events about this subtask (repeatable), plus those of the whole swarm")
            p.add_argument("--kind", dest="event_kinds", action="append", default=[], metavar="KIND",
                           help="only events of this kind (repeatable): subtask_update, agent_tool_call, "
                           "merge_completed, complete, ...")
        _connection_args(p)

    resume = sub.add_parser("resume", help="continue an interrupted swarm (its orchestrator is gone)")
    resume.add_argument("swarm_id")
    resume.add_argument("--json", action="store_true", help="print the full result as JSON")
    resume.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    _connection_args(resume)

    cancel = sub.add_parser("cancel", help="cancel a swarm or one of its subtasks")
    cancel.add_argument("swarm_id")
    cancel.add_argument("subtask_id", nargs="?")
    cancel.add_argument("--reason", default="cancelled by the user")
    _connection_args(cancel)

    lst = sub.add_parser("list", help="list swarms (newest first; filter by state, label and time)")
    add_list_arguments(lst)
    lst.add_argument("--json", action="store_true")
    _connection_args(lst)

    add_serve_arguments(sub)

    plug = sub.add_parser("plugins", help="list loaded plugins")
    plug.add_argument("--json", action="store_true")

    wt = sub.add_parser("worktrees", help="list or prune sub-agent worktrees")
    wt.add_argument("action", choices=("list", "prune"))
    wt.add_argument("--repo", default=".")

    tok = sub.add_parser("auth-token", help="make a bearer token and its token-file entry (new), or hash one (hash)")
    tok.add_argument("action", choices=("new", "hash"), help="hash reads the token from standard input")
    tok.add_argument("--subject", required=True, help="who the token is for")
    tok.add_argument("--role", choices=("client", "admin", "service"), default="client")
    tok.add_argument("--tenant", default="", help="the tenant of a client token")

    cache = sub.add_parser("cache", help="result cache statistics or clearing")
    cache.add_argument("action", choices=("stats", "clear"))
    _connection_args(cache)

    add_agent_arguments(sub)
