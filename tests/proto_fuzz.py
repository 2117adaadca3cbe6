"""Hypothesis strategies for any protobuf message, built from its descriptor,
and the raw-bytes calls a fuzzer sends with them.

Messages are drawn field by field: each field is left unset or given a value
of its type, biased towards the values that break servers (empty and very
long strings, NUL bytes, invalid paths, extreme and negative integers, NaN
and infinities, enum numbers that name no value, deep nesting, oversized
repeated fields). A share of the requests is then damaged on the wire
(truncated, bytes flipped, junk appended) to exercise the parsers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from google.protobuf import descriptor as d
from google.protobuf import message_factory
from google.protobuf.message import Message
from hypothesis import strategies as st

__all__ = ["Method", "damaged", "message_strategy", "methods_of", "request_bytes"]

F = d.FieldDescriptor
MAX_DEPTH = 3

#: Strings worth trying in any string field, beside random text.
INTERESTING_STRINGS = (
    "",
    "a",
    "x" * 300,
    "y" * 5000,
    "with\x00nul",
    "../../etc/passwd",
    "/etc/passwd",
    "relative/path",
    "a b",
    "swarm-1",
    "00000000-0000-0000-0000-000000000000",
    "created_at desc",
    "created_at asc",
    "name desc",
    "replay/none.jsonl",
    "fake/scripted",
    "local",
    "\u202e\ufeff\U0001f600",
)
_INTS = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1),
    F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1),
    F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1),
    F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1),
    F.TYPE_FIXED64: (0, 2**64 - 1),
}


def _integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    edges = [v for v in (lo, hi, -1, 0, 1, 2, 1000, 1001, 10**6, 2**31 - 1) if lo <= v <= hi]
    return st.one_of(st.sampled_from(edges), st.integers(min_value=max(lo, -(10**6)), max_value=min(hi, 10**6)), st.integers(lo, hi))


def _strings(extra: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(INTERESTING_STRINGS + extra), st.text(max_size=40))


def _scalar(field: d.FieldDescriptor, extra: tuple[str, ...]) -> st.SearchStrategy[Any]:
    t = field.type
    if t == F.TYPE_STRING:
        return _strings(extra)
    if t == F.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == F.TYPE_BOOL:
        return st.booleans()
    if t in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        special = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, -1.0, 1e308])
        return st.one_of(special, st.floats(allow_nan=True, allow_infinity=True, width=64 if t == F.TYPE_DOUBLE else 32))
    if t == F.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), st.integers(min(numbers) - 3, max(numbers) + 3))
    lo, hi = _INTS[t]
    return _integers(lo, hi)


def _fill(draw: Callable[..., Any], msg: Message, depth: int, extra: tuple[str, ...]) -> None:
    desc = msg.DESCRIPTOR
    if desc.full_name == "google.protobuf.Any":
        return  # an Any with random bytes is not a message anyone sends on purpose
    chosen_oneofs: dict[str, str] = {}
    for oneof in desc.oneofs:
        names = [f.name for f in oneof.fields]
        pick = draw(st.sampled_from(["", *names]))
        chosen_oneofs[oneof.name] = pick
    for field in desc.fields:
        if field.containing_oneof is not None and chosen_oneofs.get(field.containing_oneof.name) != field.name:
            continue
        if field.containing_oneof is None and not draw(st.booleans()):
            continue
        _set_field(draw, msg, field, depth, extra)


def _set_field(draw: Callable[..., Any], msg: Message, field: d.FieldDescriptor, depth: int, extra: tuple[str, ...]) -> None:
    repeated = field.is_repeated
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key_f, value_f = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
        target = getattr(msg, field.name)
        for _ in range(draw(st.integers(0, 3))):
            key = draw(_scalar(key_f, extra))
            if value_f.message_type is not None:
                if depth < MAX_DEPTH:
                    _fill(draw, target[key], depth + 1, extra)
            else:
                target[key] = draw(_scalar(value_f, extra))
        return
    if field.message_type is not None:
        if depth >= MAX_DEPTH:
            return
        if repeated:
            target = getattr(msg, field.name)
            for _ in range(draw(st.sampled_from([0, 1, 2, 3, 50]))):
                _fill(draw, target.add(), depth + 1, extra)
        else:
            _fill(draw, getattr(msg, field.name), depth + 1, extra)
            getattr(msg, field.name).SetInParent()
        return
    if repeated:
        getattr(msg, field.name).extend(draw(st.lists(_scalar(field, extra), max_size=4)))
        return
    value = draw(_scalar(field, extra))
    if field.type == F.TYPE_FLOAT and math.isfinite(value) and abs(value) > 3.4e38:
        value = math.inf
    setattr(msg, field.name, value)


def message_strategy(descriptor: d.Descriptor, extra: tuple[str, ...] = ()) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor``'s type; ``extra`` adds strings to try (a real repository path)."""
    cls = message_factory.GetMessageClass(descriptor)

    @st.composite
    def build(draw: Callable[..., Any]) -> Message:
        msg = cls()
        _fill(draw, msg, 0, extra)
        return msg

    return build()


@st.composite
def damaged(draw: Callable[..., Any], payload: bytes) -> bytes:
    """``payload`` as a broken sender or a hostile one might put it on the wire."""
    how = draw(st.sampled_from(["truncate", "flip", "append", "random", "invalid-utf8"]))
    if how == "truncate" and payload:
        return payload[: draw(st.integers(0, len(payload) - 1))]
    if how == "flip" and payload:
        data = bytearray(payload)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
        return bytes(data)
    if how == "append":
        return payload + draw(st.binary(min_size=1, max_size=32))
    if how == "invalid-utf8":
        return payload + b"\x0a\x02\xff\xfe"  # field 1 as a string that is not UTF-8
    return draw(st.binary(max_size=128))


class Method:
    """One RPC as bytes in, bytes out."""

    def __init__(self, service: d.ServiceDescriptor, method: d.MethodDescriptor) -> None:
        self.path = f"/{service.full_name}/{method.name}"
        self.input = method.input_type
        self.client_streaming = method.client_streaming
        self.server_streaming = method.server_streaming

    def __repr__(self) -> str:
        return self.path


def methods_of(*services: d.ServiceDescriptor) -> list[Method]:
    return [Method(s, m) for s in services for m in s.methods]


def request_bytes(msg: Message) -> bytes:
    return msg.SerializeToString()


def chunks(payload: bytes, count: int) -> Iterator[bytes]:
    """``count`` copies of one request, for client-streaming RPCs."""
    for _ in range(count):
        yield payload
