"""Conversions between protobuf messages and what SQLite stores.

Times are stored as integer microseconds since the epoch (exact, sortable,
comparable in SQL). Shared values are stored as compact JSON text rather than
protobuf bytes so the database stays readable with the ``sqlite3`` shell and
its JSON functions; the conversion is written out by hand because
``json_format`` silently maps an unset ``Value`` to null and reports NaN
without saying where it was.
"""

from __future__ import annotations

import json
import math
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from swarmd.services.errors import InvalidArgument

__all__ = [
    "decode_value",
    "encode_value",
    "json_type_name",
    "timestamp",
]

# Integral doubles below this magnitude are written as JSON integers (``3``
# rather than ``3.0``); beyond it a double no longer holds every integer.
_EXACT_INT_LIMIT = 2**53


def timestamp(micros: int | None) -> timestamp_pb2.Timestamp | None:
    """A ``Timestamp`` for ``micros`` since the epoch, or None for NULL."""
    if micros is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromMicroseconds(micros)
    return ts


def json_type_name(value: struct_pb2.Value) -> str:
    """JSON type of ``value``: null, boolean, integer, number, string, array or object."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return "integer" if math.isfinite(number) and number.is_integer() else "number"
    return {
        "null_value": "null",
        "bool_value": "boolean",
        "string_value": "string",
        "list_value": "array",
        "struct_value": "object",
    }.get(kind or "", "null")


def _to_python(value: struct_pb2.Value, path: str) -> Any:
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == "bool_value":
        return value.bool_value
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise InvalidArgument(f"{path}: {number} is not a JSON number")
        if number.is_integer() and abs(number) < _EXACT_INT_LIMIT:
            return int(number)
        return number
    if kind == "list_value":
        return [_to_python(item, f"{path}[{i}]") for i, item in enumerate(value.list_value.values)]
    return {
        name: _to_python(item, f"{path}.{name}") for name, item in value.struct_value.fields.items()
    }


def encode_value(value: struct_pb2.Value, field: str = "value") -> str:
    """Compact JSON text of ``value``.

    An unset top-level ``Value`` is refused (JSON null must be sent as
    ``null_value``), so a client that forgot the field hears about it; unset
    values nested in a list or struct read as null.
    """
    if value.WhichOneof("kind") is None:
        raise InvalidArgument(f"{field}: required (send null_value for JSON null)")
    return json.dumps(
        _to_python(value, field), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )


def _from_python(obj: Any, out: struct_pb2.Value) -> None:
    if obj is None:
        out.null_value = struct_pb2.NULL_VALUE
    elif isinstance(obj, bool):
        out.bool_value = obj
    elif isinstance(obj, int | float):
        out.number_value = float(obj)
    elif isinstance(obj, str):
        out.string_value = obj
    elif isinstance(obj, list):
        out.list_value.SetInParent()  # so an empty array is still an array
        values = out.list_value.values
        for item in obj:
            _from_python(item, values.add())
    else:
        out.struct_value.SetInParent()
        fields = out.struct_value.fields
        for name, item in obj.items():
            _from_python(item, fields[name])


def decode_value(text: str) -> struct_pb2.Value:
    """The ``Value`` stored as ``text`` by :func:`encode_value`."""
    out = struct_pb2.Value()
    _from_python(json.loads(text), out)
    return out
