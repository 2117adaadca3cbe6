"""Context-window management for the agent loop (seed §5.1 and §5.3, fixed).

Token counts are estimated, not measured: ``ceil(bytes / 3.5)`` per text,
plus per-message overheads (4 per message; a tool call adds its id, name and
arguments plus 10; a tool result adds its call id plus 6).

Before every model call :func:`fit_context` keeps the conversation under
``floor(context_window * 0.85) - max_output_tokens``:

1. every tool result longer than 2,000 tokens is cut to 6,000 characters;
2. if that is not enough, whole *groups* are dropped from the middle, oldest
   first: an assistant message together with the tool results answering its
   calls (or a lone user message). The system prompt, the task and the
   newest group always stay, and a tool result is never separated from the
   assistant message that called it, so strict providers still accept the
   conversation. A user note at index 2 says how many messages went and
   which tools they used (a later drop updates the same note).

Tool outputs are bounded when they enter the conversation
(:func:`shrink_tool_output`): up to 6,000 characters pass unchanged; longer
ones are cut at a line boundary with the seed's marker. The seed summarised
outputs over 50,000 characters with a recursive model call; swarmd truncates
those too, which costs nothing and never fails.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from swarmd.plugins.model import Message, ToolSpec

__all__ = [
    "CONTEXT_NOTE_PREFIX",
    "FitReport",
    "estimate_message_tokens",
    "estimate_request_tokens",
    "estimate_text_tokens",
    "estimate_tokens",
    "fit_context",
    "shrink_tool_output",
    "truncate_single_result",
]

BYTES_PER_TOKEN = 3.5
#: Share of the context window the conversation may fill.
FILL_RATIO = 0.85
#: Tool results longer than this (tokens) are cut first when over budget.
BIG_RESULT_TOKENS = 2000
#: Length (characters) big results are cut to.
RESULT_CHARS = 6000
#: Messages at the head that always stay: the system prompt and the task.
HEAD = 2
CONTEXT_NOTE_PREFIX = "[Context truncated: "


def estimate_text_tokens(text: str | None) -> int:
    if not text:
        return 0
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


def estimate_message_tokens(message: Message) -> int:
    tokens = 4 + estimate_text_tokens(message.content)
    for call in message.tool_calls:
        tokens += (
            estimate_text_tokens(call.id) + estimate_text_tokens(call.name) + estimate_text_tokens(call.arguments) + 10
        )
    if message.role == "tool":
        tokens += estimate_text_tokens(message.tool_call_id) + 6
    return tokens


def estimate_tokens(messages: Sequence[Message]) -> int:
    return sum(estimate_message_tokens(m) for m in messages)


def estimate_request_tokens(messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
    """Prompt tokens of a request: the messages plus the tool definitions."""
    tool_text = json.dumps([[t.name, t.description, dict(t.parameters)] for t in tools]) if tools else ""
    return estimate_tokens(messages) + estimate_text_tokens(tool_text)


def truncate_single_result(content: str, max_chars: int) -> str:
    """Cut ``content`` to at most ``max_chars`` at the last line break before
    the limit (or at the limit when there is none) and say so."""
    if len(content) <= max_chars:
        return content
    cut = content.rfind("\n", 0, max_chars)
    if cut <= 0:
        cut = max_chars
    kept = content[:cut]
    return f"{kept}...\n\n[OUTPUT TRUNCATED: {len(content)} → {len(kept)} chars to fit context limit]"


def shrink_tool_output(content: str, limit: int = RESULT_CHARS) -> str:
    """Bound a tool output before it enters the conversation (§5.3)."""
    return truncate_single_result(content, limit)


@dataclass
class FitReport:
    """What :func:`fit_context` did."""

    tokens_before: int
    tokens_after: int
    target: int
    results_truncated: int = 0
    messages_dropped: int = 0
    tools_dropped: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.results_truncated or self.messages_dropped)


def _groups(messages: Sequence[Message], start: int) -> list[tuple[int, int]]:
    """[start, end) ranges: an assistant message with its tool results, or one other message."""
    groups: list[tuple[int, int]] = []
    i = start
    while i < len(messages):
        j = i + 1
        if messages[i].role == "assistant":
            while j < len(messages) and messages[j].role == "tool":
                j += 1
        groups.append((i, j))
        i = j
    return groups


def _parse_note(message: Message) -> tuple[int, list[str]]:
    """Counts carried by an earlier truncation note."""
    text = message.content or ""
    try:
        count = int(text[len(CONTEXT_NOTE_PREFIX) :].split(" ", 1)[0])
    except ValueError:
        count = 0
    tools: list[str] = []
    marker = "Tools used in truncated history: "
    if marker in text:
        tools = [t.strip() for t in text.split(marker, 1)[1].split(",") if t.strip()]
    return count, tools


def fit_context(
    messages: list[Message],
    *,
    context_window: int,
    reserve_tokens: int,
    tools: Sequence[ToolSpec] = (),
) -> FitReport:
    """Shrink ``messages`` in place to fit the window (see the module docstring)."""
    target = max(1, math.floor(context_window * FILL_RATIO) - reserve_tokens)
    tools_tokens = estimate_request_tokens([], tools)

    def total() -> int:
        return estimate_tokens(messages) + tools_tokens

    report = FitReport(tokens_before=total(), tokens_after=0, target=target)
    if report.tokens_before <= target:
        report.tokens_after = report.tokens_before
        return report

    for message in messages:
        if message.role == "tool" and estimate_text_tokens(message.content) > BIG_RESULT_TOKENS:
            message.content = truncate_single_result(message.content or "", RESULT_CHARS)
            report.results_truncated += 1

    if total() > target:
        dropped_before, tools_before = 0, list[str]()
        start = HEAD
        if len(messages) > HEAD and messages[HEAD].role == "user" and (messages[HEAD].content or "").startswith(
            CONTEXT_NOTE_PREFIX
        ):
            dropped_before, tools_before = _parse_note(messages[HEAD])
            start = HEAD + 1
        groups = _groups(messages, start)
        over = total() - target
        drop_until = start
        freed = 0
        # Drop the oldest groups, never the newest one.
        for begin, end in groups[:-1]:
            if freed >= over:
                break
            freed += sum(estimate_message_tokens(m) for m in messages[begin:end])
            drop_until = end
        if drop_until > start:
            removed = messages[start:drop_until]
            names = list(dict.fromkeys([*tools_before, *(c.name for m in removed for c in m.tool_calls)]))
            count = dropped_before + len(removed)
            note = f"{CONTEXT_NOTE_PREFIX}{count} earlier messages removed to fit context window]"
            if names:
                note += "\nTools used in truncated history: " + ", ".join(names)
            messages[HEAD:drop_until] = [Message("user", note)]
            report.messages_dropped = len(removed)
            report.tools_dropped = names
    report.tokens_after = total()
    return report
