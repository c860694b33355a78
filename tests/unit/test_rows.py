"""DB-API rows → Arrow: SQLite's per-value types either convert exactly or fail the run naming
the column and the value — never a silent change of the data."""

from __future__ import annotations

from typing import Any

import pytest

from egress.domain.catalog import ColumnInfo
from egress.sources.arrow_types import arrow_schema
from egress.sources.base import SourceError
from egress.sources.rows import rows_to_batch


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
