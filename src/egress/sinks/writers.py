"""Format writers: one Arrow batch in, encoded bytes out, with bounded memory.

Value rendering rules (the same for every source):
- CSV: RFC 4180 via Arrow's writer; header quoted; NULL is an empty field, an empty string is "";
  timestamps ``YYYY-MM-DD HH:MM:SS.ffffff`` (``Z`` suffix when time-zoned, always UTC) and dates
  as quoted text (``"infinity"``/``"-infinity"`` for PostgreSQL's infinite values); times of
  day quoted ``HH:MM:SS.ffffff`` (``24:00:00.000000``: PostgreSQL's end of a day); durations
  ``[-]HH:MM:SS.ffffff``; binary values as base64; lists as JSON array text.
- JSONL: one object per line, strict JSON; timestamps ISO 8601 (``Z`` when time-zoned), decimals
  as strings, binary as base64, JSON columns embedded as JSON (numbers as the source wrote
  them: ``render.json_document``), lists as arrays; float NaN and
  infinities as the strings "NaN", "Infinity", "-Infinity".
- Parquet: zstd-compressed, Arrow types kept (decimals as DECIMAL, timestamps in µs, lists as
  LIST); an infinite date or timestamp, or a time of 24:00, fails the run (Parquet has no value
  for it); dictionary encoding only for columns whose first rows repeat their values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from egress.sinks.jsonl import JsonlWriter
from egress.sinks.render import (
    base64_column,
    date_text,
    duration_column,
    json_list_column,
    json_renderer,
    refuse_beyond_text,
    time_text,
)
from egress.sources.arrow_types import can_be_infinite, column_past_day, first_infinity

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}


class BatchWriter(Protocol):
    def write(self, batch: pa.RecordBatch) -> None: ...

    def write_many(self, batches: list[pa.RecordBatch]) -> None:
        """Write several batches as one unit (one Parquet row group), without concatenating."""

    def close(self) -> None:
        """Finish the format (footer); the underlying stream stays open."""


def _csv_text(field: pa.Field) -> Callable[[pa.Array], pa.Array] | None:
    """How a column Arrow's CSV writer cannot render Egress's way becomes text; None if it can."""
    t = field.type
    if pa.types.is_binary(t):
        return base64_column
    if can_be_infinite(t):
        return date_text
    if pa.types.is_duration(t):
        return duration_column
    if pa.types.is_time(t):
        return time_text
    if pa.types.is_list(t):
        render = json_renderer(field)
        return lambda col: json_list_column(col, render)
    return None


class CsvWriter:
    def __init__(self, out: BinaryIO, schema: pa.Schema, *, header: bool = True) -> None:
        self._text = [_csv_text(f) for f in schema]
        self._schema = pa.schema(
            [
                f if text is None else pa.field(f.name, pa.string(), metadata=f.metadata)
                for f, text in zip(schema, self._text, strict=True)
            ]
        )
        options = pacsv.WriteOptions(include_header=header)
        self._writer = pacsv.CSVWriter(out, self._schema, write_options=options)

    def write(self, batch: pa.RecordBatch) -> None:
        refuse_beyond_text(batch)
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


def refuse_unrepresentable(batch: pa.RecordBatch, target: str) -> None:
    """Fail, naming the column and the value, when ``target`` cannot hold an infinite date or
    a time of day at or past 24:00:00 (PostgreSQL's end of a day: no Parquet reader's time
    type holds it)."""
    for field, col in zip(batch.schema, batch.columns, strict=True):
        value = first_infinity(col)
        if value is not None:
            _refuse(field.name, repr(value), target)
    name = column_past_day(batch, end=True)
    if name is not None:
        _refuse(name, "a time of day at or past 24:00:00", target)


def _refuse(name: str, value: str, target: str) -> None:
    raise ValueError(
        f"column {name!r} holds {value}, which {target} cannot represent;"
        " export it as CSV or JSONL, or filter it out with a whereClause"
    )


# A column is dictionary-encoded when its first rows repeat values at least this many times
# each on average. Arrow's writer would try a dictionary for every column and give up on
# distinct ones only past a 1 MiB dictionary page: on the benchmark's mostly distinct columns
# that hashing doubled the writer's CPU and the file's size (bench/README.md, issue 19).
DICTIONARY_REPEATS = 8
# ... among this many first rows: counting a whole first batch's distinct values (tens of
# thousands of rows, every column hashed) cost a 1 M-row run ~50-90 ms (bench/README.md).
DICTIONARY_SAMPLE_ROWS = 8192


def dictionary_columns(batch: pa.RecordBatch) -> list[str]:
    """The columns with few distinct values among ``batch``'s first rows (flat columns only: a
    nested one is named by its leaf paths, and stays plain)."""
    chosen = []
    sample = batch.slice(0, DICTIONARY_SAMPLE_ROWS)
    for field, column in zip(sample.schema, sample.columns, strict=True):
        if pa.types.is_nested(field.type) or pa.types.is_boolean(field.type):
            continue
        try:
            distinct = pc.count_distinct(column, mode="all").as_py()
        except pa.ArrowNotImplementedError:  # a type the kernel lacks: plain, as nested
            continue
        if distinct * DICTIONARY_REPEATS <= len(column):
            chosen.append(field.name)
    return chosen


class DictionaryChoice:
    """The dictionary-encoded columns of one run's Parquet files, decided from the first rows
    the first of them gets: a split's parts share it. Each part deciding from its own first
    rows cost ~8 ms a part (of a 1 s run split 8 ways, bench/README.md), and let one run's
    parts differ in their encodings."""

    def __init__(self) -> None:
        self._columns: list[str] | None = None

    def of(self, first: pa.RecordBatch) -> list[str]:
        if self._columns is None:
            self._columns = dictionary_columns(first)
        return self._columns


class ParquetWriter:
    def __init__(
        self, out: BinaryIO, schema: pa.Schema, dictionary: DictionaryChoice | None = None
    ) -> None:
        self._out = out
        self._schema = schema
        self._dictionary = dictionary or DictionaryChoice()
        self._writer: pq.ParquetWriter | None = None

    def _open(self, first: pa.RecordBatch | None) -> pq.ParquetWriter:
        if self._writer is None:
            dictionary = [] if first is None else self._dictionary.of(first)
            self._writer = pq.ParquetWriter(
                self._out, self._schema, compression="zstd", use_dictionary=dictionary
            )
        return self._writer

    def write(self, batch: pa.RecordBatch) -> None:
        self.write_many([batch])

    def write_many(self, batches: list[pa.RecordBatch]) -> None:
        for batch in batches:
            refuse_unrepresentable(batch, "Parquet")
        writer = self._open(batches[0] if batches else None)
        writer.write_table(pa.Table.from_batches(batches, self._schema), row_group_size=1 << 30)

    def close(self) -> None:
        self._open(None).close()


WRITERS: dict[str, Callable[[BinaryIO, pa.Schema], BatchWriter]] = {
    "csv": CsvWriter,
    "jsonl": JsonlWriter,
    "parquet": ParquetWriter,
}


def format_writer(
    fmt: str, out: BinaryIO, schema: pa.Schema, dictionary: DictionaryChoice | None = None
) -> BatchWriter:
    """The format's writer into ``out``; a Parquet writer shares ``dictionary`` (if given)."""
    if fmt == "parquet":
        return ParquetWriter(out, schema, dictionary)
    return WRITERS[fmt](out, schema)


def content_type(fmt: str, compression: str) -> str:
    return "application/gzip" if compression == "gzip" else CONTENT_TYPES[fmt]
