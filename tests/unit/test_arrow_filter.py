"""whereClause, date ranges, windows and selected rows as Arrow expressions (file sources):
typed literals and SQL's NULL semantics, checked on an in-memory table."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.errors import Invalid
from egress.domain.options import Window, date_range
from egress.domain.plan import KeySelection, ReadPlan
from egress.query.arrow_filter import plan_filter

COLUMNS = [
    ColumnInfo("id", "int64"),
    ColumnInfo("name", "string"),
    ColumnInfo("price", "decimal(10,2)"),
    ColumnInfo("day", "date"),
    ColumnInfo("at", "timestamp"),
    ColumnInfo("ok", "boolean"),
]
TABLE = pa.table(
    {
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "name": pa.array(["Apple", "banana", None, "cherry"]),
        "price": pa.array(
            [Decimal("100.00"), Decimal("99.99"), None, Decimal("250.50")], pa.decimal128(10, 2)
        ),
        "day": pa.array([date(2026, 1, 1), date(2026, 1, 31), None, date(2026, 2, 1)]),
        "at": pa.array(
            [datetime(2026, 1, 1, 9), datetime(2026, 1, 31, 23, 59), None, datetime(2026, 2, 1)],
            pa.timestamp("us"),
        ),
        "ok": pa.array([True, False, None, True]),
    }
)


def ids(**plan: object) -> list[int]:
    p = ReadPlan(TableRef(None, "t.parquet"), COLUMNS, COLUMNS, **plan)  # type: ignore[arg-type]
    condition = plan_filter(p, TABLE.schema)
    return sorted(ds.dataset(TABLE).to_table(filter=condition)["id"].to_pylist())


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("price >= 100", [1, 4]),  # an integer literal against a decimal column
        ("price = 99.99", [2]),
        ("day = '2026-01-31'", [2]),  # a text literal read as a date
        ("at < '2026-01-31 12:00:00'", [1]),
        ("day BETWEEN '2026-01-01' AND '2026-01-31'", [1, 2]),
        ("name LIKE 'b%'", [2]),
        ("name NOT LIKE 'b%'", [1, 4]),  # NULL stays unknown: not selected
        ("name ILIKE 'apple'", [1]),
        ("name IS NULL", [3]),
        ("name IS NOT NULL", [1, 2, 4]),
        ("id NOT IN (1, 2)", [3, 4]),
        ("price NOT IN (100, NULL)", []),  # SQL: NOT IN with a NULL is never true
        ("ok IS TRUE", [1, 4]),
        ("NOT (ok IS TRUE)", [2, 3]),
        ("NOT ok", [2]),
        ("upper(name) = 'BANANA' OR length(name) = 6 AND id > 3", [2, 4]),
        ("coalesce(price, 0) = 0", [3]),
        ("abs(id - 3) = 1 AND id % 2 = 0", [2, 4]),
        ("date(at) = '2026-01-31'", [2]),
        ("trim(lower(name)) = 'apple'", [1]),
    ],
)
def test_where_clause(where: str, expected: list[int]) -> None:
    assert ids(where=where) == expected


def test_a_literal_that_cannot_be_the_columns_type_is_refused_with_both_named() -> None:
    with pytest.raises(Invalid, match=r"'soon' cannot be compared with .*date32"):
        ids(where="day > 'soon'")


def test_date_range_window_and_keys_combine() -> None:
    dates = date_range("at", "2026-01-01", "2026-01-31")
    assert ids(dates=dates) == [1, 2]  # the whole last day is in
    assert ids(dates=dates, window=Window("id", 1, 4)) == [2]
    assert ids(keys=KeySelection(["id"], [[4], [2], [99]])) == [2, 4]
    assert ids(keys=KeySelection(["id", "name"], [[1, "Apple"], [2, "nope"]])) == [1]
    assert ids(keys=KeySelection(["price"], [[100], ["250.5"]])) == [1, 4]
