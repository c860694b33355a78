"""Split-by router: one pass over the source, one open file per distinct value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from egress.domain.split import canonical_value, sub_extract_id
from egress.sinks.file import FileSink

# A batch's rows by value of the split field: (raw value, its rows), each value once.
Grouped = list[tuple[object, pa.RecordBatch]]


class TooManyParts(Exception):
    pass


class PartsClash(ValueError):
    """Two distinct values of one run came to one sub-extract id: the run fails rather than
    give both the one id (ids are made never to coincide; this is the last check). A
    ValueError, so the failed run says this message as it is (``faults.failure_message``)."""


@dataclass
class Part:
    sub_extract_id: str
    value: str | None
    sink: FileSink


class SplitRouter:
    """Routes rows to one sink per value. Each value's rows are gathered until ``flush_rows``
    (so Parquet gets row groups of a useful size, not one sliver per batch and value); all
    gathered rows together never exceed twice that, so memory stays bounded."""

    def __init__(
        self,
        field: str,
        output: list[str],
        max_parts: int,
        open_sink: Callable[[str, str | None], FileSink],
        flush_rows: int,
    ) -> None:
        self._field = field
        self._output = output
        self._max_parts = max_parts
        self._open = open_sink
        self._flush_rows = flush_rows
        # By canonical value, never by id: a part holds the rows of its one value only.
        self.parts: dict[str | None, Part] = {}
        self._ids: dict[str, str | None] = {}  # each part's id, the value it was given to
        self._pending: dict[str | None, list[pa.RecordBatch]] = {}
        self._pending_rows: dict[str | None, int] = {}
        self._total = 0

    def group(self, batch: pa.RecordBatch) -> Grouped:
        """``batch``'s output columns (it holds the split field too, by name) as one slice per
        value of the split field. It touches no state of the router: the runner calls it on
        the reading thread, so the gathering of rows overlaps the writing."""
        column = batch.column(self._field)
        encoded = pc.dictionary_encode(column, null_encoding="encode")
        batch = batch.select(self._output)
        dictionary = encoded.dictionary
        _refuse_beyond_python(self._field, dictionary)
        if len(dictionary) == 1:
            return [(dictionary[0].as_py(), batch)]
        # One sort and one gather, then a zero-copy slice per value.
        order = pc.sort_indices(encoded.indices)
        grouped = batch.take(order)
        out: Grouped = []
        offset = 0
        for entry in pc.value_counts(encoded.indices.take(order)):
            code, count = entry["values"].as_py(), entry["counts"].as_py()
            out.append((dictionary[code].as_py(), grouped.slice(offset, count)))
            offset += count
        return out

    def write(self, grouped: Grouped) -> None:
        """A batch's rows as ``group`` gave them, to their parts."""
        for raw, rows in grouped:
            self._gather(self.part(raw), rows)
        while self._total > 2 * self._flush_rows:
            self._flush(max(self._pending_rows, key=self._pending_rows.__getitem__))

    def close(self) -> None:
        """Write out everything still gathered."""
        for value in list(self._pending):
            self._flush(value)

    def _gather(self, part: Part, rows: pa.RecordBatch) -> None:
        value = part.value
        self._pending.setdefault(value, []).append(rows)
        self._pending_rows[value] = self._pending_rows.get(value, 0) + rows.num_rows
        self._total += rows.num_rows
        if self._pending_rows[value] >= self._flush_rows:
            self._flush(value)

    def _flush(self, value: str | None) -> None:
        batches = self._pending.pop(value)
        self._total -= self._pending_rows.pop(value)
        self.parts[value].sink.write_many(batches)

    def part(self, raw: object) -> Part:
        """The part of a value of the split field, its file opened when it is the first."""
        value = canonical_value(raw)
        part = self.parts.get(value)
        if part is None:
            if len(self.parts) >= self._max_parts:
                raise TooManyParts(
                    f"split by {self._field!r} produced more than {self._max_parts} distinct "
                    "values (EGRESS_MAX_SPLIT_PARTS); split by a coarser field"
                )
            pid = sub_extract_id(value)
            if pid in self._ids:
                raise PartsClash(
                    f"split by {self._field!r}: the values {self._ids[pid]!r} and {value!r} "
                    f"both have the sub-extract id {pid!r}; nothing was published"
                )
            part = Part(pid, value, self._open(pid, value))
            self._ids[pid] = value
            self.parts[value] = part
        return part


def _refuse_beyond_python(field: str, values: pa.Array) -> None:
    """A date or timestamp outside the years 1-9999 (PostgreSQL's BC dates, its five-digit
    years) has no text in the names and ids of sub-extracts, which Python's dates give: the
    run fails naming the value, which a whereClause can filter out."""
    if not pa.types.is_temporal(values.type):
        return
    try:
        values.to_pylist()
    except (OverflowError, ValueError):
        texts = pc.cast(values, pa.string()).to_pylist()
        for value, text in zip(values, texts, strict=True):
            try:
                value.as_py()
            except (OverflowError, ValueError):
                raise ValueError(
                    f"split by {field!r}: the value {text} is outside the years 1-9999 that a "
                    "sub-extract can be named by; filter it out (whereClause) or split by "
                    "another field"
                ) from None
