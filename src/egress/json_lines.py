"""JSON lines from Arrow columns: each column's values as JSON text, joined into one
``{"key":value,…}`` line per row by one element-wise join.

Shared by the JSONL writer (``sinks/jsonl.py``: Arrow batches of any type) and PostgreSQL's
JSONL fast path (``sources/postgresql/jsonl_copy.py``: the CSV fast path's text). The bytes are
those of ``json.dumps(row, ensure_ascii=False, separators=(",", ":"))``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

# allow_nan=False: a non-finite float left anywhere fails the run, never invalid JSON.
dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
# What json.dumps escapes with ensure_ascii=False: '"', '\' and the C0 control characters.
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'
_ESCAPED_BYTES = bytes(range(0x20)) + b'"\\'
_QUOTE = pa.scalar('"')
_EMPTY = pa.scalar("")


@dataclass(frozen=True)
class Rendered:
    """A column's values as JSON text (NULL for a null). ``quoted``: the text is a string's
    escaped content, still to be put in quotes with ``suffix`` (e.g. ``Z``) before the closing
    one; when a column has no nulls, the quotes go into the glue between values, for free."""

    text: pa.Array
    quoted: bool
    suffix: str = ""


# How a column's values become their JSON text.
Render = Callable[[pa.Array], Rendered]


def bare(text: pa.Array) -> Rendered:
    return Rendered(text, quoted=False)


def content(text: pa.Array, suffix: str = "") -> Rendered:
    return Rendered(text, quoted=True, suffix=suffix)


def _needs_no_escape(col: pa.Array) -> bool:
    """Whether no value of a string column has a character JSON escapes: one C pass over the
    column's text (``bytes.translate``), ~3x cheaper than the regex kernel on every value."""
    _validity, offsets, data = col.buffers()
    if data is None:
        return True
    ends = memoryview(offsets).cast("i")  # int32 offsets: string, not large_string
    text = bytes(memoryview(data)[ends[col.offset] : ends[col.offset + len(col)]])
    return len(text.translate(None, _ESCAPED_BYTES)) == len(text)


def strings(col: pa.Array) -> Rendered:
    """Text as JSON strings: escaped (value by value, by Python's encoder) only where needed."""
    if pa.types.is_string(col.type) and _needs_no_escape(col):
        return content(col)
    escape = pc.fill_null(pc.match_substring_regex(col, _NEEDS_ESCAPE), False)
    if not pc.any(escape).as_py():
        return content(col)
    escaped = [dumps(v)[1:-1] for v in pc.filter(col, escape).to_pylist()]
    return content(pc.replace_with_mask(col, escape, pa.array(escaped, pa.string())))


def keys(names: list[str]) -> list[str]:
    """Each name as the JSON text that opens its value (``"name":``)."""
    return [dumps(name) + ":" for name in names]


def json_lines(opening: list[str], values: list[Rendered], rows: int) -> pa.Array:
    """One JSON object and newline per row: ``opening`` (``keys``) with its column's values."""
    parts: list[pa.Array | pa.Scalar] = []
    glue = "{"  # what goes between the previous value and the next one
    for key, value in zip(opening, values, strict=True):
        text = value.text
        if value.quoted and not text.null_count:
            parts += [pa.scalar(glue + key + '"'), text]
            glue = value.suffix + '",'
            continue
        if value.quoted:
            text = pc.binary_join_element_wise(_QUOTE, text, pa.scalar(value.suffix + '"'), _EMPTY)
        parts += [pa.scalar(glue + key), pc.fill_null(text, "null") if text.null_count else text]
        glue = ","
    end = pa.scalar(("{}" if glue == "{" else glue[:-1] + "}") + "\n")
    if not parts:  # no columns: '{}' per row
        parts = [pa.repeat(_EMPTY, rows)]
    return pc.binary_join_element_wise(*parts, end, _EMPTY)


def write_lines(out: BinaryIO, lines: pa.Array) -> None:
    """The lines as they sit back to back in the array's data buffer."""
    _validity, offsets, data = lines.buffers()
    ends = memoryview(offsets).cast("i")  # int32 offsets: a slice's text is < 2 GiB
    first, last = ends[lines.offset], ends[lines.offset + len(lines)]
    out.write(memoryview(data)[first:last])
