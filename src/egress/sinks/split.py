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
        self.parts: dict[str, Part] = {}
        self._pending: dict[str, list[pa.RecordBatch]] = {}
        self._pending_rows: dict[str, int] = {}
        self._total = 0

    def group(self, batch: pa.RecordBatch) -> Grouped:
        """``batch``'s output columns (it holds the split field too, by name) as one slice per
        value of the split field. It touches no state of the router: the runner calls it on
        the reading thread, so the gathering of rows overlaps the writing."""
        column = batch.column(self._field)
        encoded = pc.dictionary_encode(column, null_encoding="encode")
        batch = batch.select(self._output)
        dictionary = encoded.dictionary
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
        for pid in list(self._pending):
            self._flush(pid)

    def _gather(self, part: Part, rows: pa.RecordBatch) -> None:
        pid = part.sub_extract_id
        self._pending.setdefault(pid, []).append(rows)
        self._pending_rows[pid] = self._pending_rows.get(pid, 0) + rows.num_rows
        self._total += rows.num_rows
        if self._pending_rows[pid] >= self._flush_rows:
            self._flush(pid)

    def _flush(self, pid: str) -> None:
        batches = self._pending.pop(pid)
        self._total -= self._pending_rows.pop(pid)
        self.parts[pid].sink.write_many(batches)

    def part(self, raw: object) -> Part:
        """The part of a value of the split field, its file opened when it is the first."""
        value = canonical_value(raw)
        pid = sub_extract_id(value)
        part = self.parts.get(pid)
        if part is None:
            if len(self.parts) >= self._max_parts:
                raise TooManyParts(
                    f"split by {self._field!r} produced more than {self._max_parts} distinct "
                    "values (EGRESS_MAX_SPLIT_PARTS); split by a coarser field"
                )
            part = Part(pid, value, self._open(pid, value))
            self.parts[pid] = part
        return part
