"""Format writers: one Arrow batch in, encoded bytes out, with bounded memory.

Value rendering rules (the same for every source):
- CSV: RFC 4180 via Arrow's writer; header quoted; NULL is an empty field, an empty string is "";
  timestamps ``YYYY-MM-DD HH:MM:SS.ffffff`` (``Z`` suffix when time-zoned, always UTC);
  binary values as base64.
- JSONL: one object per line; timestamps ISO 8601 (``Z`` when time-zoned), decimals as
  strings, binary as base64, JSON columns embedded as JSON.
- Parquet: zstd-compressed, Arrow types kept (decimals as DECIMAL, timestamps in µs).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, BinaryIO, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

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


def _text_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema(
        [
            pa.field(f.name, pa.string(), metadata=f.metadata) if pa.types.is_binary(f.type) else f
            for f in schema
        ]
    )


class CsvWriter:
    def __init__(self, out: BinaryIO, schema: pa.Schema) -> None:
        self._schema = _text_schema(schema)
        self._writer = pacsv.CSVWriter(out, self._schema)

    def write(self, batch: pa.RecordBatch) -> None:
        columns = [_base64_column(c) if pa.types.is_binary(c.type) else c for c in batch.columns]
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


def _json_renderer(field: pa.Field) -> Callable[[pa.Array], list[Any]]:
    t = field.type
    logical = (field.metadata or {}).get(b"egress.type", b"").decode()
    if logical == "json":
        return lambda col: [None if v is None else json.loads(v) for v in col.to_pylist()]
    if pa.types.is_timestamp(t):
        fmt = "%Y-%m-%dT%H:%M:%S" + ("Z" if t.tz else "")
        return lambda col: pc.strftime(col, format=fmt).to_pylist()
    if pa.types.is_decimal(t):
        return _plain_decimals
    if pa.types.is_date(t) or pa.types.is_time(t):
        return lambda col: pc.cast(col, pa.string()).to_pylist()
    if pa.types.is_binary(t):
        return lambda col: _base64_column(col).to_pylist()
    return lambda col: col.to_pylist()


class JsonlWriter:
    def __init__(self, out: BinaryIO, schema: pa.Schema) -> None:
        self._out = out
        self._names = schema.names
        self._renderers = [_json_renderer(f) for f in schema]
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

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


class ParquetWriter:
    def __init__(self, out: BinaryIO, schema: pa.Schema) -> None:
        self._writer = pq.ParquetWriter(out, schema, compression="zstd")

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def write_many(self, batches: list[pa.RecordBatch]) -> None:
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
