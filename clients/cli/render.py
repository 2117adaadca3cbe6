"""Human output of the CLI: live progress, the plan, and the final summary."""

from __future__ import annotations

import datetime as dt
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from google.protobuf import json_format, timestamp_pb2

from swarmd.v1 import common_pb2

__all__ = [
    "Progress",
    "format_plan",
    "format_subtask",
    "format_summary",
    "format_time",
    "status_name",
    "swarm_json",
]


def status_name(value: int) -> str:
    return str(common_pb2.SubTaskStatus.Name(value)).removeprefix("SUB_TASK_STATUS_").lower()


def state_name(value: int) -> str:
    return str(common_pb2.SwarmState.Name(value)).removeprefix("SWARM_STATE_").lower()


def format_time(ts: timestamp_pb2.Timestamp) -> str:
    """A Timestamp as RFC 3339 in UTC to the second, ``-`` when unset."""
    if not ts.seconds and not ts.nanos:
        return "-"
    return str(ts.ToDatetime(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def format_subtask(state: common_pb2.SubTaskState, swarm_state: int) -> str:
    """One subtask in full: status, timing, result, commit and diff."""
    result = state.result
    lines = [
        f"Subtask: {state.subtask.id} ({state.subtask.name or state.subtask.id})",
        f"Swarm state: {state_name(swarm_state)}",
        f"Status: {status_name(state.status)}" + (f" - {state.status_reason}" if state.status_reason else ""),
        f"Attempt: {state.attempt}, steps {state.steps}, tool calls {state.tool_calls}",
        f"Started: {format_time(state.started_at)}, finished: {format_time(state.finished_at)}",
    ]
    merge = result.merge
    if merge.commit or merge.merge_commit or merge.branch:
        outcome = common_pb2.MergeOutcome.Name(merge.outcome).removeprefix("MERGE_OUTCOME_").lower()
        lines.append(
            f"Commit: {merge.commit or '-'} on {merge.branch or '-'} ({outcome}"
            + (f", merged as {merge.merge_commit}" if merge.merge_commit else "")
            + ")"
        )
    for v in state.variants:
        won = " (won)" if v.winner else ""
        why = f" - {v.reason}" if v.reason else ""
        lines.append(f"Variant {v.variant} ({v.strategy}, {v.model or '-'}): {status_name(v.status)}{won} on {v.branch}{why}")
    if result.error:
        lines.append(f"Error: {result.error}")
    if result.result:
        lines += ["", "--- result ---", result.result.rstrip()]
    patch = b"".join(a.content for a in result.artifacts if a.artifact_type == "patch")
    if patch:
        lines += ["", "--- diff ---", patch.decode("utf-8", "replace").rstrip()]
    return "\n".join(lines)


def swarm_json(swarm: common_pb2.Swarm) -> str:
    return str(json_format.MessageToJson(swarm, preserving_proto_field_name=True, indent=2))


@dataclass
class _Row:
    name: str
    status: str = "pending"
    tool: str = ""
    steps: int = 0
    attempt: int = 0


_DONE = {"completed", "failed", "cancelled", "timed_out", "skipped"}


class Progress:
    """Renders events: a live block (one line per sub-agent plus a summary bar)
    on a terminal, plain timestamped lines otherwise."""

    def __init__(self, out: TextIO | None = None, *, live: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.live = self.out.isatty() if live is None else live
        self.rows: dict[str, _Row] = {}
        self.tool_calls = 0
        self.started = time.monotonic()
        self._drawn = 0
        self._event: common_pb2.SwarmEvent | None = None

    def _line(self, text: str) -> None:
        """One plain line: the event's own time and its sequence number (for ``--after``)."""
        if self.live:
            self._clear()
        event = self._event
        if event is not None and event.HasField("time"):
            when = dt.datetime.fromtimestamp(event.time.seconds + event.time.nanos / 1e9)
            stamp = when.strftime("%H:%M:%S.%f")[:-3]
        else:
            stamp = time.strftime("%H:%M:%S")
        seq = f" #{event.sequence}" if event is not None and event.sequence else ""
        print(f"{stamp}{seq} {text}", file=self.out, flush=True)
        if self.live:
            self._draw()

    def _name(self, subtask_id: str) -> str:
        row = self.rows.get(subtask_id)
        return row.name if row else subtask_id

    def handle(self, event: common_pb2.SwarmEvent) -> None:
        self._event = event
        kind = event.WhichOneof("kind")
        if kind == "started":
            self._line(f"swarm {event.swarm_id} started: {event.started.total_subtasks} subtasks")
        elif kind == "decomposed":
            for st in event.decomposed.subtasks:
                self.rows[st.id] = _Row(st.name or st.id)
            self._line(f"plan: {len(event.decomposed.subtasks)} subtasks in {event.decomposed.stage_count} stage(s)")
        elif kind == "subtask_update":
            u = event.subtask_update
            row = self.rows.setdefault(u.subtask_id, _Row(u.name or u.subtask_id))
            row.status = status_name(u.status)
            row.attempt = u.attempt or row.attempt
            if row.status in _DONE:
                row.tool = ""
            reason = f" ({u.reason})" if u.reason else ""
            agent = " [cached]" if u.agent_name == "cached" else ""
            self._line(f"subtask {row.name}: {row.status}{agent}{reason}")
        elif kind == "agent_tool_call":
            c = event.agent_tool_call
            row = self.rows.setdefault(c.subtask_id, _Row(c.subtask_id))
            row.tool = c.tool_name
            self.tool_calls += 1
            if not self.live:
                self._line(f"subtask {row.name}: tool {c.tool_name}")
            else:
                self._redraw()
        elif kind == "agent_step":
            row = self.rows.setdefault(event.agent_step.subtask_id, _Row(event.agent_step.subtask_id))
            row.steps = max(row.steps, event.agent_step.step)
            if self.live:
                self._redraw()
        elif kind == "agent_error":
            self._line(f"subtask {self._name(event.agent_error.subtask_id)}: error: {event.agent_error.error}")
        elif kind == "retry_scheduled":
            r = event.retry_scheduled
            who = f"subtask {self._name(r.subtask_id)}" if r.subtask_id else "decomposition"
            self._line(f"{who}: retry {r.next_attempt} in {r.delay_ms} ms ({r.reason})")
        elif kind == "merge_completed":
            m = event.merge_completed.merge
            outcome = common_pb2.MergeOutcome.Name(m.outcome).removeprefix("MERGE_OUTCOME_").lower()
            files = f": {', '.join(c.path for c in m.conflicts)}" if m.conflicts else ""
            self._line(f"subtask {self._name(event.merge_completed.subtask_id)}: merge {outcome}{files}")
        elif kind == "warning":
            self._line(f"warning [{event.warning.code}]: {event.warning.message}")
        elif kind == "collapse_evaluated":
            c = event.collapse_evaluated
            for kill in c.kills:
                self._line(f"subtask {self._name(kill.subtask_id)}: killed by the collapse controller ({kill.reason})")
            if c.promotion_changed:
                self._line(f"collapse: {self._name(c.promoted_subtask_id)} promoted (best-scoring branch)")
        elif kind == "speculation_decided":
            d = event.speculation_decided
            losers = f"; cancelled: {', '.join(d.loser_subtask_ids)}" if d.loser_subtask_ids else ""
            self._line(f"subtask {self._name(d.subtask_id)}: {d.winner_subtask_id} won the race ({d.branch}){losers}")
        elif kind == "stage_complete":
            s = event.stage_complete
            self._line(f"stage {s.stage} done: {_counts(s.completed, s.failed, s.cancelled, s.skipped)}")
        elif kind == "error":
            self._line(f"error: {event.error.message}")
        elif kind == "complete":
            if self.live:
                self._clear()
                self.live = False
            self._line(f"swarm {state_name(event.complete.state)}")

    # -- live block ---------------------------------------------------------
    def _bar(self) -> str:
        total = len(self.rows) or 1
        done = sum(1 for r in self.rows.values() if r.status in _DONE)
        running = sum(1 for r in self.rows.values() if r.status == "running")
        failed = sum(1 for r in self.rows.values() if r.status in {"failed", "timed_out"})
        other = sum(1 for r in self.rows.values() if r.status in {"cancelled", "skipped"})
        width = 24
        filled = int(width * done / total)
        elapsed = time.monotonic() - self.started
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {done}/{len(self.rows)} done, {running} running, "
            f"{failed} failed, {other} cancelled/skipped, {self.tool_calls} tool calls, {elapsed:5.1f}s"
        )

    def _draw(self) -> None:
        lines = [
            f"  {r.name[:32]:<32} {r.status:<10} steps {r.steps:<4} {('> ' + r.tool) if r.tool else ''}"
            for r in self.rows.values()
        ]
        lines.append(self._bar())
        print("\n".join(lines), file=self.out, flush=True)
        self._drawn = len(lines)

    def _clear(self) -> None:
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _redraw(self) -> None:
        self._clear()
        self._draw()


def format_plan(swarm: common_pb2.Swarm, report: common_pb2.PreflightReport | None = None) -> str:
    # A dry run stores nothing, so its swarm has no id.
    title = f"Plan for swarm {swarm.id}" if swarm.id else "Plan (dry run)"
    lines = [f"{title}: {len(swarm.subtasks)} subtasks, {swarm.stage_count} stage(s)"]
    by_stage: dict[int, list[common_pb2.SubTask]] = {}
    for st in swarm.subtasks:
        by_stage.setdefault(st.subtask.stage, []).append(st.subtask)
    for stage in sorted(by_stage):
        lines.append(f"  stage {stage}:")
        for st in by_stage[stage]:
            deps = f" <- {', '.join(st.dependencies)}" if st.dependencies else ""
            mode = " (read-only)" if st.read_only else ""
            lines.append(f"    {st.id} {st.name!r} [{st.specialty or 'General'}]{mode}{deps}")
    if report is not None:
        lines.append(f"Pre-flight: {'valid' if report.is_valid else 'INVALID'}")
        branch = f" on {report.current_branch}" if report.current_branch else ""
        lines.append(
            f"  workspace: {'git repository' + branch if report.is_git_repo else 'not a git repository'}, "
            f"{report.uncommitted_changes} uncommitted change(s)"
        )
        lines.append(
            f"  tokens: ~{report.estimated_prompt_tokens} prompt + ~{report.estimated_completion_tokens} completion"
        )
        marks = {1: "i", 2: "!", 3: "x"}
        for issue in report.issues:
            tip = f" -> {issue.suggestion}" if issue.suggestion else ""
            lines.append(f"  [{marks.get(issue.severity, '?')}] {issue.category}: {issue.message}{tip}")
    return "\n".join(lines)


def _counts(completed: int, failed: int, cancelled: int, skipped: int) -> str:
    """``3 completed, 1 failed`` plus cancelled and skipped when there are any."""
    parts = [f"{completed} completed", f"{failed} failed"]
    parts += [f"{n} {word}" for n, word in ((cancelled, "cancelled"), (skipped, "skipped")) if n]
    return ", ".join(parts)


def _endpoint(key: str) -> str:
    """``provider model at base_url`` from a governor key (its key fingerprint left out)."""
    provider, _, rest = key.partition("|")
    base_url, _, rest = rest.partition("|")
    model, _, _fingerprint = rest.partition("|")
    if not model:
        return key
    return f"{provider}/{model}" + (f" at {base_url}" if base_url else "")


def format_summary(swarm: common_pb2.Swarm) -> str:
    s = swarm.stats
    ok = swarm.state == common_pb2.SWARM_STATE_SUCCEEDED
    lines = [
        "=== Swarm Execution Results ===",
        f"Swarm: {swarm.id}",
        f"Status: {'SUCCESS' if ok else state_name(swarm.state).upper()}",
        f"Subtasks: {len(swarm.subtasks)} ("
        f"{_counts(s.subagents_completed, s.subagents_failed, s.subagents_cancelled, s.subagents_skipped)})",
        f"Speedup: {s.speedup_factor:.1f}x (sum of subtask times / wall time)",
        f"Critical Path: {s.critical_path_steps} steps, {s.critical_path_time_ms / 1000:.2f}s wall "
        f"({' -> '.join(s.critical_path) or '-'})",
        f"CriticalSteps: {s.critical_steps} (orchestrator {s.orchestrator_steps} + per-stage maxima "
        f"{'+'.join(str(st.max_steps) for st in s.stages) or '0'})",
        f"Wall time: {s.execution_time_ms / 1000:.2f}s (sum of subtasks {s.sequential_time_estimate_ms / 1000:.2f}s)",
        f"Steps: {s.total_steps}, tool calls: {s.total_tool_calls}, retries: {s.retries}",
        f"Tokens: {s.usage.total_tokens} ({s.usage.prompt_tokens} prompt, {s.usage.completion_tokens} completion), "
        f"cost ${s.cost_usd:.4f}",
        f"Cache: {s.cache.hits} hits, {s.cache.misses} misses",
    ]
    if s.HasField("collapse"):
        c = s.collapse
        lines.append(
            f"Collapse: {c.evaluations} evaluations, {c.kills} kills, {c.promotions} promotions, "
            f"{c.speculative_wins} speculative wins ({c.speculative_losers} losers cancelled)"
            f" (promoted: {c.promoted_subtask_id or '-'})"
        )
    for rl in s.rate_limits:
        lines.append(
            f"Rate limit {_endpoint(rl.key)}: {rl.total_requests} requests, {rl.rate_limit_hits} x 429, "
            f"concurrency {rl.concurrency_limit}, waited {rl.total_wait_ms} ms"
        )
    if swarm.error:
        lines.append(f"Error: {swarm.error}")
    if swarm.result:
        lines += ["", swarm.result.rstrip()]
    return "\n".join(lines)
