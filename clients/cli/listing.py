"""The grammar of ``swarmd list``: its flags turned into a ListSwarms request.

    --state S        only swarms in state S (repeatable): planning, running,
                     succeeded, failed, cancelled, interrupted, ...
    --label K=V      only swarms labelled K=V (repeatable; all must match)
    --since WHEN     submitted at or after WHEN
    --until WHEN     submitted before WHEN
    --oldest-first   oldest first (the default is newest first)

WHEN is an RFC 3339 time or date (``2026-01-31T08:00:00Z``, ``2026-01-31``;
without a zone it is UTC) or an age: a number and ``s``, ``m``, ``h``, ``d`` or
``w`` ago (``90m``, ``2d``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re

from swarmd.v1 import common_pb2, orchestrator_pb2

__all__ = ["add_list_arguments", "list_request", "parse_label", "parse_state", "parse_when"]

_AGE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_state(text: str) -> int:
    """argparse type for --state: a swarm state name, e.g. ``running``."""
    name = "SWARM_STATE_" + text.strip().upper()
    if name not in common_pb2.SwarmState.keys() or name == "SWARM_STATE_UNSPECIFIED":
        names = ", ".join(
            n.removeprefix("SWARM_STATE_").lower()
            for n in common_pb2.SwarmState.keys()
            if n != "SWARM_STATE_UNSPECIFIED"
        )
        raise argparse.ArgumentTypeError(f"{text!r} is not a swarm state ({names})")
    return int(common_pb2.SwarmState.Value(name))


def parse_label(text: str) -> tuple[str, str]:
    """argparse type for --label: ``KEY=VALUE``."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def parse_when(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """argparse type for --since/--until: an RFC 3339 time or date, or an age."""
    age = _AGE.match(text.strip())
    if age:
        now = now or dt.datetime.now(dt.UTC)
        return now - dt.timedelta(seconds=int(age.group(1)) * _UNITS[age.group(2)])
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an RFC 3339 time (2026-01-31T08:00:00Z) nor an age (90m, 2d)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def add_list_arguments(lst: argparse.ArgumentParser) -> None:
    """The filter and order flags of ``swarmd list``."""
    lst.add_argument("--state", dest="states", action="append", type=parse_state, default=[], metavar="STATE",
                     help="only swarms in this state (repeatable): planning, running, succeeded, failed, "
                     "cancelled, interrupted")
    lst.add_argument("--label", dest="labels", action="append", type=parse_label, default=[], metavar="KEY=VALUE",
                     help="only swarms with this label (repeatable; all must match)")
    lst.add_argument("--since", type=parse_when, metavar="WHEN",
                     help="only swarms submitted at or after WHEN: RFC 3339 (2026-01-31T08:00:00Z, 2026-01-31) "
                     "or an age (90m, 12h, 2d)")
    lst.add_argument("--until", type=parse_when, metavar="WHEN", help="only swarms submitted before WHEN")
    lst.add_argument("--oldest-first", action="store_true", help="oldest first (default: newest first)")
    lst.add_argument("--limit", type=int, default=50, metavar="N",
                     help="swarms per page, 1 to 1000 (default 50)")
    lst.add_argument("--all", action="store_true", help="follow every page, not just the first")
    lst.add_argument("--page-token", default="", metavar="TOKEN",
                     help="continue a listing where a previous one stopped (same filters)")


def list_request(args: argparse.Namespace) -> orchestrator_pb2.ListSwarmsRequest:
    """The ListSwarms request ``swarmd list`` flags stand for."""
    request = orchestrator_pb2.ListSwarmsRequest(
        page_size=args.limit,
        page_token=args.page_token,
        order_by="created_at asc" if args.oldest_first else "created_at desc",
    )
    request.filter.states.extend(args.states)
    request.filter.labels.update(dict(args.labels))
    if args.since is not None:
        request.filter.created_after.FromDatetime(args.since)
    if args.until is not None:
        request.filter.created_before.FromDatetime(args.until)
    return request
