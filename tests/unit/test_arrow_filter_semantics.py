"""Where Arrow's own meaning differs from SQL's, the files filter follows SQL (PostgreSQL):
``%`` truncates, ``trim()`` removes spaces, a date is compared with an instant as its midnight
UTC, timestamp text with an offset is an instant, numbers compare by value, a NULL key matches
nothing, and a type mismatch is named — checked on an in-memory table."""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.errors import Invalid
from egress.domain.options import Window, date_range
from egress.domain.plan import KeySelection, ReadPlan
from egress.query.arrow_filter import _bound, plan_filter

TABLE = pa.table(
    {
        "id": pa.array([1, 2, 3, 4, 5], pa.int64()),
        "i": pa.array([1, 2, -4, None, -(2**63)], pa.int64()),
        "f": pa.array([1.5, 2.0, -4.5, None, 7.5]),
        "amount": pa.array(
            [
                Decimal("12345678901234567.1"),
                Decimal("12345678901234567.2"),
                Decimal("-4.5"),
                None,
                Decimal("7.5"),
            ],
            pa.decimal128(20, 1),
        ),
        "s": pa.array([" x ", "x\t", "x", "\u00a0x", "xx "]),
        "d": pa.array([date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3), None, None]),
        "ts": pa.array(
            [datetime(2026, 1, 1, 10), datetime(2026, 1, 1, 12), None, None, None],
            pa.timestamp("us"),
        ),
        # Instants (UTC 10:00 and 12:00) shown in +05:30.
        "tz": pa.array(
            [datetime(2026, 1, 1, 10), datetime(2026, 1, 1, 12), None, None, None],
            pa.timestamp("us", "+05:30"),
        ),
    }
)
COLUMNS = [ColumnInfo(name, "string") for name in TABLE.schema.names]  # names only


def ids(**plan: object) -> list[int]:
    p = ReadPlan(TableRef(None, "t"), COLUMNS, COLUMNS, **plan)  # type: ignore[arg-type]
    condition = plan_filter(p, TABLE.schema)
    return sorted(ds.dataset(TABLE).to_table(filter=condition)["id"].to_pylist())


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # % truncates toward zero (the sign of the dividend), for every number type.
        ("i % 3 = -1", [3]),
        ("i % -3 = 1", [1]),
        ("i % -1 = 0", [1, 2, 3, 5]),  # INT64_MIN % -1 is 0, not an overflow
        ("f % 3 = -1.5", [3]),
        ("amount % 3 = -1.5", [3]),
        # trim() removes spaces only, or the characters given, from the ends named.
        ("trim(s) = 'x'", [1, 3]),
        ("trim(leading from s) = 'x '", [1]),
        ("trim(trailing from s) = 'xx'", [5]),
        ("trim(both 'x ' from s) = ''", [1, 3, 5]),
        # Decimal literals are exact; integers are compared with them by value.
        ("amount = 12345678901234567.1", [1]),
        ("amount > 12345678901234567.1", [2]),
        ("amount IN (12345678901234567.2, 1.25)", [2]),  # 1.25 is no decimal(20,1)
        ("i = 1.5", []),
        ("i < 1.5", [1, 3, 5]),
        ("i = 2.0", [2]),
        ("i IN (1, 1.5)", [1]),
        ("i NOT IN (1.5)", [1, 2, 3, 5]),
        ("i BETWEEN 0.5 AND 2.5", [1, 2]),
        ("i > -1.5", [1, 2]),
        ("i * 1.5 > 2", [2]),  # a decimal product compared with 2
        ("abs(i - 1.5) < 1", [1, 2]),
        ("coalesce(i, 2.5) > 2", [4]),
        ("f = 1.5", [1]),
        ("f IN (1.5, 2)", [1, 2]),
        # Timestamp text with an offset is an instant; without one, UTC.
        ("ts > '2026-01-01T11:00:00Z'", [2]),
        ("ts < '2026-01-01T13:00:00+02:00'", [1]),
        ("ts = '2026-01-01 10:00:00'", [1]),
        ("tz = '2026-01-01T15:30:00+05:30'", [1]),
        ("tz = '2026-01-01T10:00:00Z'", [1]),
        ("tz = '2026-01-01 12:00:00'", [2]),
    ],
)
def test_where_clause_follows_sql(where: str, expected: list[int]) -> None:
    assert ids(where=where) == expected


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("length(i) = 1", "length() takes text, but column 'i' is int64 (in 'LENGTH(i)')"),
        ("upper(i + 1) = '2'", "upper() takes text, but i + 1 is int64 (in 'UPPER(i + 1)')"),
        ("abs(s) = 1", "abs() takes numbers, but column 's' is string (in 'ABS(s)')"),
        ("-s = 1", "- takes numbers, but column 's' is string (in '-s')"),
        ("d + 1 = 2", "+ takes numbers, but column 'd' is date32[day] (in 'd + 1')"),
        ("i LIKE '1%'", "LIKE takes text, but column 'i' is int64 (in \"i LIKE '1%'\")"),
        ("date(i) = '2026-01-01'", "date() takes a date, a timestamp or text, but column 'i'"),
        ("trim(s, s) = 'x'", "trim() needs quoted characters"),
        # What no check names, Arrow's typing does, as an error of the whereClause.
        ("s = i", "cannot be evaluated on these columns' types: Function 'equal' has no kernel"),
        ("i", "cannot be evaluated on these columns' types: Filter expression must evaluate"),
        ("i = 1e-100", "1E-100 cannot be compared with values of type int64"),  # > 76 digits
        # A fraction finer than the column is refused, not rounded away.
        ("ts = '2026-01-01T10:00:00.0000001Z'", "cannot be compared with values of type"),
    ],
)
def test_a_type_mismatch_is_named(where: str, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        ids(where=where)
    assert message in caught.value.errors[0].msg


@pytest.mark.parametrize(
    ("date_from", "date_to", "exclusive", "expected"),
    [
        ("2026-01-01T12:00:00Z", None, False, [2, 3]),
        ("2026-01-01T19:00:00-05:00", None, False, [2, 3]),  # 2026-01-02T00:00Z
        ("2026-01-02T00:00:00+01:00", None, False, [2, 3]),  # 2026-01-01T23:00Z
        (None, "2026-01-02T00:00:00+01:00", False, [1]),
        (None, "2026-01-02T12:00:00Z", True, [1, 2]),
        (None, "2026-01-02T00:00:00Z", True, [1]),
        (None, "2026-01-02T00:00:00Z", False, [1, 2]),
        ("2026-01-02", "2026-01-02", False, [2]),
        (None, "9999-12-31T23:59:59Z", False, [1, 2, 3]),
    ],
)
def test_a_date_column_against_an_instant(
    date_from: str | None, date_to: str | None, exclusive: bool, expected: list[int]
) -> None:
    assert ids(dates=date_range("d", date_from, date_to, exclusive)) == expected


def test_a_date_against_an_instant_inside_a_day_equals_none() -> None:
    noon = datetime(2026, 1, 2, 12, tzinfo=UTC)
    east = datetime(2026, 1, 2, 1, tzinfo=timezone(timedelta(hours=1)))  # midnight UTC

    def match(compare: Callable[[Any, Any], Any], value: datetime) -> list[int]:
        condition = _bound("d", compare, value, TABLE.schema)
        return sorted(ds.dataset(TABLE).to_table(filter=condition)["id"].to_pylist())

    assert match(operator.eq, noon) == []
    assert match(operator.ne, noon) == [1, 2, 3]  # NULL stays unknown
    assert match(operator.eq, east) == [2]
    assert match(operator.gt, noon) == [3]


def test_an_incremental_window_on_a_date_column() -> None:
    assert ids(window=Window("d", "2026-01-01", "2026-01-02")) == [2]


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (KeySelection(["i"], [[None]]), []),  # SQL's IN is never true for NULL
        (KeySelection(["i"], [[None], [2]]), [2]),
        (KeySelection(["i", "id"], [[None, 4]]), []),
        (KeySelection(["i"], [[1.5], [1.0]]), [1]),  # no integer is 1.5
        (KeySelection(["amount"], [["12345678901234567.1"], [0.125]]), [1]),
        (KeySelection(["ts"], [["2026-01-01T14:00:00+02:00"]]), [2]),
    ],
)
def test_selected_rows(keys: KeySelection, expected: list[int]) -> None:
    assert ids(keys=keys) == expected


BOOLEANS = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "b": pa.array([True, False, None])})
BOOLEAN_COLUMNS = [ColumnInfo("id", "int64"), ColumnInfo("b", "boolean")]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("b = 'true'", [1]),
        ("b = 'TRUE'", [1]),
        ("b != 'true'", [2]),
        ("b <> 'False'", [1]),
        ("b IN ('true')", [1]),
        ("b IN ('true', 'false')", [1, 2]),
        ("b NOT IN ('false')", [1]),
        ("b BETWEEN 'false' AND 'true'", [1, 2]),
        ("b > 'false'", [1]),
        ("coalesce(b, 'false') = 'false'", [2, 3]),
    ],
)
def test_text_compared_with_a_boolean_column_is_a_boolean(where: str, expected: list[int]) -> None:
    """As on every database source (MySQL read 'true' as 0, SQLite compared it with 1 and 0)."""
    plan = ReadPlan(TableRef(None, "t"), BOOLEAN_COLUMNS, BOOLEAN_COLUMNS, where=where)
    condition = plan_filter(plan, BOOLEANS.schema)
    assert sorted(ds.dataset(BOOLEANS).to_table(filter=condition)["id"].to_pylist()) == expected


def test_text_no_boolean_is_spelt_as_is_refused_on_files_too() -> None:
    plan = ReadPlan(TableRef(None, "t"), BOOLEAN_COLUMNS, BOOLEAN_COLUMNS, where="b = '1'")
    with pytest.raises(Invalid, match="'1' cannot be compared with boolean column 'b'"):
        plan_filter(plan, BOOLEANS.schema)
