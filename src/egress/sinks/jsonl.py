"""The JSONL writer, column at a time: each column becomes an Arrow string array of JSON
texts (one per row), and one element-wise join makes the lines.

The bytes are exactly those of ``json.dumps(row, ensure_ascii=False, separators=(",", ":"))``
over the values ``render.json_renderer`` gives (the rules in ``writers``'s docstring): the
columns Arrow can render exactly (integers, booleans, dates, times, timestamps, decimals, text
without characters JSON escapes) are rendered by Arrow's kernels; floats by Arrow's cast where
its text is Python's ``repr`` (JSON's own float text), by ``repr`` elsewhere; the rest (JSON
columns, lists, binary, durations, the rare strings that need escaping) value by value, as
before. A JSON column's numbers are the source's text, not Python's float of it
(``render.json_document``).
"""

from __future__ import annotations

import math
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from egress.json_lines import (
    Render,
    Rendered,
    bare,
    content,
    dumps,
    json_lines,
    keys,
    strings,
    write_lines,
)
from egress.sinks.json_native import json_documents
from egress.sinks.render import (
    date_text,
    json_renderer,
    json_timestamp_format,
    plain_decimals,
    refuse_beyond_text,
    time_text,
    timestamp_text,
)
from egress.sources.arrow_types import infinity_masks

# Rows rendered at once: the Python-rendered columns cost ~10x their Arrow size.
JSONL_SLICE_ROWS = 32768

_FLOAT_WORDS = {math.inf: '"Infinity"', -math.inf: '"-Infinity"'}


def _float_text(v: float | None) -> str | None:
    if v is None:
        return None
    if math.isfinite(v):
        return repr(v)  # what json.dumps writes for a float
    return '"NaN"' if math.isnan(v) else _FLOAT_WORDS[v]


def _floats(col: pa.Array) -> Rendered:
    """Python's float text (``repr``) is the shortest round-trip digits, in fixed notation
    with at least one decimal for 1e-4 <= |x| < 1e16. Arrow's cast has the same digits but its
    own choice of notation and no ``.0``: where Arrow wrote fixed notation and Python would
    too, its text (plus ``.0`` when it has no point) is Python's; the rest goes through repr."""
    wide = pc.cast(col, pa.float64())  # a float32 exactly, as Python sees it
    text = pc.cast(wide, pa.string())
    size = pc.abs(wide)
    in_range = pc.or_(pc.and_(pc.greater_equal(size, 1e-4), pc.less(size, 1e16)), pc.equal(size, 0))
    plain = pc.fill_null(pc.and_(in_range, pc.invert(pc.match_substring(text, "e"))), True)
    text = pc.if_else(
        pc.match_substring(text, "."), text, pc.binary_join_element_wise(text, ".0", "")
    )
    if pc.all(plain).as_py():
        return bare(text)
    other = pc.invert(plain)
    rest = [_float_text(v) for v in pc.filter(col, other).to_pylist()]
    return bare(pc.replace_with_mask(text, other, pa.array(rest, pa.string())))


def _by_value(field: pa.Field) -> Render:
    """Every value through Python's JSON encoder: the reference the fast paths match."""
    render = json_renderer(field)

    def rendered(col: pa.Array) -> Rendered:
        values = render(col)
        return bare(pa.array([None if v is None else dumps(v) for v in values], pa.string()))

    return rendered


def _timestamps(t: pa.TimestampType) -> Render:
    zone = "Z" if t.tz else ""
    naive = pa.timestamp(t.unit)

    def rendered(col: pa.Array) -> Rendered:
        if infinity_masks(col) is not None:  # rare: words among the values
            return content(timestamp_text(col, json_timestamp_format(t)))
        # Arrow's cast is strftime's text with a space for the T, and much faster; the UTC
        # instant read as a naive time is its UTC wall clock.
        text = pc.cast(col.view(naive), pa.string())
        return content(pc.replace_substring(text, " ", "T", max_replacements=1), zone)

    return rendered


def _decimals(col: pa.Array) -> Rendered:
    text = pc.cast(col, pa.string())
    if pc.any(pc.match_substring(text, "E")).as_py():
        text = pa.array(plain_decimals(col), pa.string())
    return content(text)


def _json_documents(name: str) -> Render:
    return lambda col: bare(json_documents(col, name))


def renderer_for(field: pa.Field) -> Render:
    """How one column becomes the JSON text of each of its values."""
    t = field.type
    logical = (field.metadata or {}).get(b"egress.type", b"").decode()
    if logical == "json" and not pa.types.is_list(t):
        return _json_documents(field.name)
    if pa.types.is_list(t) or pa.types.is_binary(t):
        return _by_value(field)
    if pa.types.is_duration(t):
        return _by_value(field)
    if pa.types.is_boolean(t):
        return lambda col: bare(pc.if_else(col, "true", "false"))
    if pa.types.is_integer(t):
        return lambda col: bare(pc.cast(col, pa.string()))
    if pa.types.is_floating(t):
        return _floats
    if pa.types.is_timestamp(t):
        return _timestamps(t)
    if pa.types.is_decimal(t):
        return _decimals
    if pa.types.is_date(t):
        return lambda col: content(date_text(col))
    if pa.types.is_time(t):
        return lambda col: content(time_text(col))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        # Also decimals and UUIDs as text: a SQLite column so declared may hold any text.
        return strings
    return _by_value(field)


class JsonlWriter:
    def __init__(self, out: BinaryIO, schema: pa.Schema) -> None:
        self._out = out
        self._renders = [renderer_for(f) for f in schema]
        self._keys = keys(schema.names)

    def write(self, batch: pa.RecordBatch) -> None:
        refuse_beyond_text(batch)
        for offset in range(0, batch.num_rows, JSONL_SLICE_ROWS):
            self._write_slice(batch.slice(offset, JSONL_SLICE_ROWS))

    def _write_slice(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        values = [render(col) for render, col in zip(self._renders, batch.columns, strict=True)]
        write_lines(self._out, json_lines(self._keys, values, batch.num_rows))

    def write_many(self, batches: list[pa.RecordBatch]) -> None:
        for batch in batches:
            self.write(batch)

    def close(self) -> None:
        return None
