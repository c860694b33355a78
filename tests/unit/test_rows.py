"""DB-API rows → Arrow: SQLite's per-value types either convert exactly or fail the run naming
the column and the value — never a silent change of the data."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from egress.domain.catalog import ColumnInfo
from egress.sources.arrow_types import arrow_schema, byte_slices
from egress.sources.base import SourceError
from egress.sources.rows import bounded_rows, rows_to_batch


def convert(logical: str, values: list[Any]) -> list[Any]:
    fields = [ColumnInfo("v", logical)]
    batch = rows_to_batch([(v,) for v in values], fields, arrow_schema(fields))
    return batch.column(0).to_pylist()


def test_values_that_fit_convert_exactly() -> None:
    assert convert("int64", [1, "2", 3.0, None, b"\x01\x00"]) == [1, 2, 3, None, 256]
    assert convert("boolean", [1, 0, "yes", "F", " true ", None]) == [
        True,
        False,
        True,
        False,
        True,
        None,
    ]


@pytest.mark.parametrize(
    ("logical", "values", "message"),
    [
        ("int64", [1, 2.5], "column 'v' is declared int64 but holds 2.5: not a whole number"),
        ("int64", [1, "2.5"], "column 'v' is declared int64 but holds '2.5'"),
        ("int64", [1, "seven"], "holds 'seven'"),
        ("boolean", [True, "maybe"], "column 'v' is declared boolean but holds 'maybe'"),
        ("int16", [1, 70000], "column 'v' does not fit int16"),
    ],
)
def test_values_that_do_not_fit_fail_naming_column_and_value(
    logical: str, values: list[Any], message: str
) -> None:
    with pytest.raises(SourceError, match=message.replace("(", r"\(").replace(".", r"\.")):
        convert(logical, values)


WIDE = [ColumnInfo("id", "int64"), ColumnInfo("text", "string")]


def test_batches_end_at_the_byte_bound_as_well_as_the_row_bound() -> None:
    """Wide rows: 2 KB each, a 64 KiB bound holds 32 of them, never the 1,000-row bound."""
    rows = [(i, "x" * 2040) for i in range(1000)]
    batches = list(bounded_rows(iter(rows), WIDE, 1000, 64 * 1024))
    assert [r for b in batches for r in b] == rows
    assert {len(b) for b in batches[:-1]} == {32}  # 32 x (2040 + 8) bytes = 64 KiB
    # Narrow rows are bounded by rows.
    narrow = [(i,) for i in range(5000)]
    fields = WIDE[:1]
    assert [len(b) for b in bounded_rows(iter(narrow), fields, 2000, 64 * 1024)] == [
        2000,
        2000,
        1000,
    ]
    assert [len(b) for b in bounded_rows(iter(narrow), fields, 2000, None)] == [2000, 2000, 1000]


def test_a_row_over_the_byte_bound_is_a_batch_of_its_own() -> None:
    big = "y" * 100_000
    rows = [(1, "a"), (2, big), (3, big), (4, "b")]
    batches = list(bounded_rows(iter(rows), WIDE, 1000, 10_000))
    assert [[r[0] for r in b] for b in batches] == [[1, 2], [3], [4]]


def test_arrow_batches_over_the_bound_are_sliced() -> None:
    batch = pa.RecordBatch.from_pydict({"v": ["z" * 1000] * 100})
    slices = list(byte_slices(batch, 10_000))
    assert sum(s.num_rows for s in slices) == 100
    assert all(s.nbytes <= 10_000 + 1000 for s in slices)
    assert pa.Table.from_batches(slices).column("v").to_pylist() == ["z" * 1000] * 100
    assert list(byte_slices(batch, 10**9)) == [batch]
