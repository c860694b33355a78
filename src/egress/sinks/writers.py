"""Format writers: one Arrow batch in, encoded bytes out, with bounded memory.

Value rendering rules (the same for every source):
- CSV: RFC 4180 via Arrow's writer; header quoted; NULL is an empty field, an empty string is "";
  timestamps ``YYYY-MM-DD HH:MM:SS.ffffff`` (``Z`` suffix when time-zoned, always UTC) and dates
  as quoted text (``"infinity"``/``"-infinity"`` for PostgreSQL's infinite values); durations
  ``[-]HH:MM:SS.ffffff``; binary values as base64; lists as JSON array text.
- JSONL: one object per line, strict JSON; timestamps ISO 8601 (``Z`` when time-zoned), decimals
  as strings, binary as base64, JSON columns embedded as JSON, lists as arrays; float NaN and
  infinities as the strings "NaN", "Infinity", "-Infinity".
- Parquet: zstd-compressed, Arrow types kept (decimals as DECIMAL, timestamps in µs, lists as
  LIST); an infinite date or timestamp fails the run (Parquet has no value for it).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any, BinaryIO, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from egress.sources.arrow_types import can_be_infinite, first_infinity, infinity_masks

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}


JSONL_SLICE_ROWS = 8192


class BatchWriter(Protocol):
    def write(self, batch: pa.RecordBatch) -> None: ...

    def write_many(self, batches: list[pa.RecordBatch]) -> None:
        """Write several batches as one unit (one Parquet row group), without concatenating."""

    def close(self) -> None:
        """Finish the format (footer); the underlying stream stays open."""


def _base64_column(col: pa.Array) -> pa.Array:
    return pa.array(
        [None if v is None else base64.b64encode(v).decode() for v in col.to_pylist()],
        pa.string(),
    )


def _date_text(col: pa.Array) -> pa.Array:
    """Dates and timestamps as Arrow's CSV writer prints them, infinities as words."""
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


def _duration_column(col: pa.Array) -> pa.Array:
    micros = pc.cast(col, pa.duration("us")).cast(pa.int64()).to_pylist()
    return pa.array([None if v is None else duration_text(v) for v in micros], pa.string())


def _json_list_column(col: pa.Array, render: Callable[[pa.Array], list[Any]]) -> pa.Array:
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
    return pa.array([None if v is None else dumps(v) for v in render(col)], pa.string())


def _csv_text(field: pa.Field) -> Callable[[pa.Array], pa.Array] | None:
    """How a column Arrow's CSV writer cannot render Egress's way becomes text; None if it can."""
    t = field.type
    if pa.types.is_binary(t):
        return _base64_column
    if can_be_infinite(t):
        return _date_text
    if pa.types.is_duration(t):
        return _duration_column
    if pa.types.is_list(t):
        render = _json_renderer(field)
        return lambda col: _json_list_column(col, render)
    return None


class CsvWriter:
    def __init__(self, out: BinaryIO, schema: pa.Schema) -> None:
        self._text = [_csv_text(f) for f in schema]
        self._schema = pa.schema(
            [
                f if text is None else pa.field(f.name, pa.string(), metadata=f.metadata)
                for f, text in zip(schema, self._text, strict=True)
            ]
        )
        self._writer = pacsv.CSVWriter(out, self._schema)

    def write(self, batch: pa.RecordBatch) -> None:
        columns = [
            c if text is None else text(c)
            for c, text in zip(batch.columns, self._text, strict=True)
        ]
        self._writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=self._schema))

    def write_many(self, batches: list[pa.RecordBatch]) -> None:
        for batch in batches:
            self.write(batch)

    def close(self) -> None:
        self._writer.close()


def _plain_decimals(col: pa.Array) -> list[str | None]:
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


def _json_timestamps(fmt: str) -> Callable[[pa.Array], list[Any]]:
    def render(col: pa.Array) -> list[Any]:
        masks = infinity_masks(col)
        if masks is None:
            values: list[Any] = pc.strftime(col, format=fmt).to_pylist()
            return values
        finite = pc.if_else(pc.or_(masks[0], masks[1]), pa.scalar(None, col.type), col)
        text = pc.strftime(finite, format=fmt)
        values = pc.if_else(
            masks[0], "infinity", pc.if_else(masks[1], "-infinity", text)
        ).to_pylist()
        return values

    return render


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


def _json_renderer(field: pa.Field) -> Callable[[pa.Array], list[Any]]:
    t = field.type
    logical = (field.metadata or {}).get(b"egress.type", b"").decode()
    if logical == "json":
        return lambda col: [None if v is None else json.loads(v) for v in col.to_pylist()]
    if pa.types.is_list(t):
        return _json_list(_json_renderer(t.value_field))
    if pa.types.is_floating(t):
        return _json_floats
    if pa.types.is_timestamp(t):
        return _json_timestamps("%Y-%m-%dT%H:%M:%S" + ("Z" if t.tz else ""))
    if pa.types.is_decimal(t):
        return _plain_decimals
    if pa.types.is_date(t):
        return lambda col: _date_text(col).to_pylist()
    if pa.types.is_time(t):
        return lambda col: pc.cast(col, pa.string()).to_pylist()
    if pa.types.is_duration(t):
        return lambda col: _duration_column(col).to_pylist()
    if pa.types.is_binary(t):
        return lambda col: _base64_column(col).to_pylist()
    return lambda col: col.to_pylist()


class JsonlWriter:
    def __init__(self, out: BinaryIO, schema: pa.Schema) -> None:
        self._out = out
        self._names = schema.names
        self._renderers = [_json_renderer(f) for f in schema]
        # allow_nan=False: a non-finite float left anywhere fails the run, never invalid JSON.
        self._dumps = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode

    def write(self, batch: pa.RecordBatch) -> None:
        # Python objects cost ~10x their Arrow size: render a slice at a time.
        for offset in range(0, batch.num_rows, JSONL_SLICE_ROWS):
            self._write_slice(batch.slice(offset, JSONL_SLICE_ROWS))

    def _write_slice(self, batch: pa.RecordBatch) -> None:
        columns = [render(col) for render, col in zip(self._renderers, batch.columns, strict=True)]
        names = self._names
        dumps = self._dumps
        lines = [dumps(dict(zip(names, row, strict=True))) for row in zip(*columns, strict=True)]
        if lines:
            self._out.write(("\n".join(lines) + "\n").encode())

    def write_many(self, batches: list[pa.RecordBatch]) -> None:
        for batch in batches:
            self.write(batch)

    def close(self) -> None:
        return None


def refuse_infinities(batch: pa.RecordBatch, target: str) -> None:
    """Fail, naming the column and the value, when ``target`` cannot hold an infinite date."""
    for field, col in zip(batch.schema, batch.columns, strict=True):
        value = first_infinity(col)
        if value is not None:
            raise ValueError(
                f"column {field.name!r} holds {value!r}, which {target} cannot represent;"
                " export it as CSV or JSONL, or filter it out with a whereClause"
            )


class ParquetWriter:
    def __init__(self, out: BinaryIO, schema: pa.Schema) -> None:
        self._writer = pq.ParquetWriter(out, schema, compression="zstd")

    def write(self, batch: pa.RecordBatch) -> None:
        refuse_infinities(batch, "Parquet")
        self._writer.write_batch(batch)

    def write_many(self, batches: list[pa.RecordBatch]) -> None:
        for batch in batches:
            refuse_infinities(batch, "Parquet")
        self._writer.write_table(pa.Table.from_batches(batches), row_group_size=1 << 30)

    def close(self) -> None:
        self._writer.close()


WRITERS: dict[str, Callable[[BinaryIO, pa.Schema], BatchWriter]] = {
    "csv": CsvWriter,
    "jsonl": JsonlWriter,
    "parquet": ParquetWriter,
}


def content_type(fmt: str, compression: str) -> str:
    return "application/gzip" if compression == "gzip" else CONTENT_TYPES[fmt]
