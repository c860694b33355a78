"""Values as the output formats render them (the rules in ``writers``'s docstring): the
column-at-a-time pieces shared by the CSV and JSONL writers."""

from __future__ import annotations

import base64
import json
import math
import re
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from egress.sources.arrow_types import (
    TEXT_YEARS,
    column_outside_years,
    column_past_day,
    day_end,
    infinity_masks,
    time_ticks,
)

_END = sys.maxsize  # a position past the end of any string


def base64_column(col: pa.Array) -> pa.Array:
    return pa.array(
        [None if v is None else base64.b64encode(v).decode() for v in col.to_pylist()],
        pa.string(),
    )


def refuse_beyond_text(batch: pa.RecordBatch) -> None:
    """Fail, naming the column, rather than write Arrow's "<value out of range>" text for a
    date or timestamp outside years -32767 to 32767 or a time of day outside 00:00:00 to
    24:00:00 (only a file can hold one)."""
    name = column_outside_years(batch, TEXT_YEARS)
    if name is not None:
        raise ValueError(
            f"column {name!r} holds a value dated outside the years -32767 to 32767, which"
            " Egress cannot write as text; export it as Parquet, or filter it out with a"
            " whereClause"
        )
    name = column_past_day(batch, end=False)
    if name is not None:
        raise ValueError(
            f"column {name!r} holds a time of day outside 00:00:00 to 24:00:00, which Egress"
            " cannot write as text; filter it out with a whereClause"
        )


def time_text(col: pa.Array) -> pa.Array:
    """Times of day as Arrow prints them (``HH:MM:SS.ffffff`` for microseconds), and
    PostgreSQL's end of a day as ``24:00:00.000000``, which Arrow prints "<value out of range>"
    (``refuse_beyond_text`` has refused later times)."""
    text = pc.cast(col, pa.string())
    ticks = time_ticks(col)
    end = day_end(col.type)
    if not pc.any(pc.equal(ticks, end)).as_py():
        return text
    midnight = pc.cast(pa.array([0], col.type), pa.string())[0].as_py()
    return pc.if_else(pc.equal(ticks, end), "24" + midnight[2:], text)


def date_text(col: pa.Array) -> pa.Array:
    """Dates and timestamps as Arrow's CSV writer prints them, infinities as words."""
    if pa.types.is_timestamp(col.type) and col.type.tz is not None:
        # Arrow's text of a time-zoned timestamp is its UTC wall clock and "Z"; rendered so
        # from the same instant read as a naive time, 30x faster than the zone-aware cast.
        # The "Z" goes on as a slice replaced past the end: a third of the cost of a join.
        naive = pc.cast(col.view(pa.timestamp(col.type.unit)), pa.string())
        text = pc.binary_replace_slice(naive, start=_END, stop=_END, replacement="Z")
    else:
        text = pc.cast(col, pa.string())
    masks = infinity_masks(col)
    if masks is not None:
        text = pc.if_else(masks[0], "infinity", pc.if_else(masks[1], "-infinity", text))
    return text


def duration_text(micros: int) -> str:
    """``[-]HH:MM:SS.ffffff`` (hours unbounded), as MySQL prints a TIME."""
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{sign}{hours:02d}:{minute:02d}:{second:02d}.{fraction:06d}"


def duration_column(col: pa.Array) -> pa.Array:
    micros = pc.cast(col, pa.duration("us")).cast(pa.int64()).to_pylist()
    return pa.array([None if v is None else duration_text(v) for v in micros], pa.string())


# Python's compact JSON, as the JSONL writer's lines (a non-finite float fails, never
# invalid JSON).
class _Object(dict[str, Any]):
    """A JSON object as its document lists it: the encoder writes ``items()``, so a repeated
    key keeps each of its values, in order (a dict would keep the last only)."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self._pairs = pairs

    def items(self) -> Any:
        return self._pairs


_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def json_list_column(col: pa.Array, render: Callable[[pa.Array], list[Any]]) -> pa.Array:
    return pa.array([None if v is None else _compact(v) for v in render(col)], pa.string())


def plain_decimals(col: pa.Array) -> list[str | None]:
    """Decimals as text with their scale. Arrow prints magnitudes below 1e-6 in scientific
    notation ("1.000E-7"); those few are rewritten plainly ("0.0000001000")."""
    text: list[str | None] = pc.cast(col, pa.string()).to_pylist()
    return [v if v is None or "E" not in v else format(Decimal(v), "f") for v in text]


_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _json_floats(col: pa.Array) -> list[Any]:
    """JSON has no NaN or infinities: they become the strings "NaN", "Infinity", "-Infinity"."""
    values: list[Any] = col.to_pylist()
    if pc.all(pc.is_finite(col)).as_py() is not False:
        return values
    return [
        v if v is None or math.isfinite(v) else ("NaN" if math.isnan(v) else _NON_FINITE[v])
        for v in values
    ]


def timestamp_text(col: pa.Array, fmt: str) -> pa.Array:
    """Timestamps through ``strftime`` (``%S`` carries the microseconds), infinities as words."""
    masks = infinity_masks(col)
    if masks is None:
        return pc.strftime(col, format=fmt)
    finite = pc.if_else(pc.or_(masks[0], masks[1]), pa.scalar(None, col.type), col)
    text = pc.strftime(finite, format=fmt)
    return pc.if_else(masks[0], "infinity", pc.if_else(masks[1], "-infinity", text))


def json_timestamp_format(t: pa.TimestampType) -> str:
    return "%Y-%m-%dT%H:%M:%S" + ("Z" if t.tz else "")


def _json_list(item: Callable[[pa.Array], list[Any]]) -> Callable[[pa.Array], list[Any]]:
    def render(col: pa.Array) -> list[Any]:
        items = item(col.flatten())
        out: list[Any] = []
        start = 0
        for length in col.value_lengths().to_pylist():
            if length is None:
                out.append(None)
                continue
            out.append(items[start : start + length])
            start += length
        return out

    return render


# Private-use characters, one of which (absent from the document) marks a number's text
# through ``json.dumps`` (see ``json_document``); almost always the first.
_MARK = "\ue000"
_MARKED = re.compile(f'"{_MARK}([^"]*)"')
_OTHER_MARKS = range(0xE001, 0xF900)


def _absent_mark(text: str) -> tuple[str, re.Pattern[str]]:
    if _MARK not in text and "ue000" not in text and "uE000" not in text:
        return _MARK, _MARKED
    lowered = text.lower()
    for code in _OTHER_MARKS:
        mark = chr(code)
        if mark not in text and f"\\u{code:04x}" not in lowered:
            return mark, re.compile(f'"{mark}([^"]*)"')
    raise ValueError("a JSON document holding every private-use character")  # not in practice


class _NotJson(ValueError):
    """A token Python's JSON reader takes that JSON has not (NaN, Infinity)."""


def json_document(text: str, column: str) -> str:
    """A JSON column's value as Egress's JSONL embeds it: Python's compact JSON of the
    document (no whitespace, strings re-escaped as ``json.dumps`` escapes them, a repeated
    key with each of its values, as the source holds them), each number as the source wrote
    it (an integer as Python's ``int`` writes it: ``-0`` is ``0``). Python's own float would
    round a number (``123.456789012345678901`` to ``123.45678901234568``) or overflow
    (``1E400``): those travel through ``json.dumps`` as strings behind a mark, then lose mark
    and quotes. Not JSON (or NaN/Infinity, which Python's reader takes): fails naming the column."""
    mark, marked = _absent_mark(text)
    floats = False

    def number(digits: str) -> str:
        nonlocal floats
        floats = True
        return mark + digits

    def refuse(token: str) -> Any:
        raise _NotJson(
            f"column {column!r} holds {token}, which is not a JSON value;"
            " export it as CSV, or filter it out with a whereClause"
        )

    try:
        try:
            value = json.loads(
                text, parse_float=number, parse_constant=refuse, object_pairs_hook=_Object
            )
        except (json.JSONDecodeError, _NotJson):
            raise
        except ValueError:  # an integer past Python's 4,300-digit limit on int()
            value = json.loads(
                text,
                parse_float=number,
                parse_int=number,
                parse_constant=refuse,
                object_pairs_hook=_Object,
            )
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"column {column!r} holds text that is not JSON ({exc.msg} at character"
            f" {exc.pos}); export it as CSV, or filter it out with a whereClause"
        ) from None
    compact = _compact(value)
    return marked.sub(r"\1", compact) if floats else compact


def json_renderer(field: pa.Field) -> Callable[[pa.Array], list[Any]]:
    t = field.type
    logical = (field.metadata or {}).get(b"egress.type", b"").decode()
    if logical == "json":
        return lambda col: [None if v is None else json.loads(v) for v in col.to_pylist()]
    if pa.types.is_list(t):
        return _json_list(json_renderer(t.value_field))
    if pa.types.is_floating(t):
        return _json_floats
    if pa.types.is_timestamp(t):
        fmt = json_timestamp_format(t)
        return lambda col: timestamp_text(col, fmt).to_pylist()
    if pa.types.is_decimal(t):
        return plain_decimals
    if pa.types.is_date(t):
        return lambda col: date_text(col).to_pylist()
    if pa.types.is_time(t):
        return lambda col: time_text(col).to_pylist()
    if pa.types.is_duration(t):
        return lambda col: duration_column(col).to_pylist()
    if pa.types.is_binary(t):
        return lambda col: base64_column(col).to_pylist()
    return lambda col: col.to_pylist()
