"""Split-by router: one pass over the source, one open file per distinct value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from egress.domain.split import canonical_value, sub_extract_id
from egress.sinks.file import FileSink


class TooManyParts(Exception):
    pass


@dataclass
class Part:
    sub_extract_id: str
    value: str | None
    sink: FileSink


class SplitRouter:
    def __init__(
        self,
        field: str,
        max_parts: int,
        open_sink: Callable[[str, str | None], FileSink],
    ) -> None:
        self._field = field
        self._max_parts = max_parts
        self._open = open_sink
        self.parts: dict[str, Part] = {}

    def write(self, batch: pa.RecordBatch) -> None:
        column = batch.column(batch.schema.get_field_index(self._field))
        encoded = pc.dictionary_encode(column, null_encoding="encode")
        codes = encoded.indices
        dictionary = encoded.dictionary
        for code in range(len(dictionary)):
            rows = batch.filter(pc.equal(codes, code))
            if rows.num_rows:
                self._part(dictionary[code].as_py()).sink.write(rows)

    def _part(self, raw: object) -> Part:
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
