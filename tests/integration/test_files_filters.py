"""A run's filters on files select what they select on the databases (README "Run options"):
a timestamp bound on a date column, ``%`` and ``trim()`` as SQL defines them, NULL keys, offset
literals on a timestamp column, numeric literals by value — and a type mismatch fails clearly.
Each case runs on a folder of Parquet files and on one of CSV files holding the same rows."""

from __future__ import annotations

import csv
import io
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from egress.container import Container
from egress.db.executions import RunRecord
from egress.domain.status import RunStatus
from tests.support.factories import sqlite_container, submitted_configuration

# id 1..4 on the days 2026-01-01..04; ``s`` with a space, a tab, nothing, a no-break space.
ROWS = pa.table(
    {
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "d": pa.array([date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3), date(2026, 1, 4)]),
        "n": pa.array([None, 2, 3, 4], pa.int64()),
        "a": pa.array([-4, 7, 5, None], pa.int64()),
        "s": pa.array([" x ", "x\t", "x", "\u00a0x"]),
        "ts": pa.array(
            [
                datetime(2026, 1, 1, 10),
                datetime(2026, 1, 1, 12),
                datetime(2026, 1, 2),
                datetime(2026, 1, 3),
            ],
            pa.timestamp("us"),
        ),
        "amount": pa.array(
            [
                Decimal("12345678901234567.1"),
                Decimal("12345678901234567.2"),
                Decimal("-4.5"),
                None,
            ],
            pa.decimal128(20, 1),
        ),
    }
)
_names = itertools.count()


@dataclass
class Files:
    c: Container
    ws: str
    connection: str

    def template(self, primary_key: list[str]) -> str:
        tpl = self.c.services.catalog.create_custom_template(
            self.ws, self.connection, f"t{next(_names)}", "events", None, primary_key, None, "d"
        )
        return submitted_configuration(self.c, self.ws, tpl.id, f"cfg{next(_names)}")

    def run(self, primary_key: list[str] | None = None, **options: Any) -> RunRecord:
        cfg = self.template(["id"] if primary_key is None else primary_key)
        execution, _ = self.c.services.executions.trigger(self.ws, cfg, options)
        assert self.c.worker().run_once()
        record = self.c.executions.get(self.ws, cfg, execution.id).latest
        assert record is not None
        return record

    def ids(self, primary_key: list[str] | None = None, **options: Any) -> list[int]:
        record = self.run(primary_key, **options)
        assert record.status in (RunStatus.COMPLETED, RunStatus.COMPLETED_NO_DATA), (
            record.error_message
        )
        if not record.files:
            return []
        data = b"".join(self.c.storage.stream(record.files[0].storage_key)).decode()
        return sorted(int(r["id"]) for r in csv.DictReader(io.StringIO(data)))


@pytest.fixture(params=["parquet", "csv"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Files]:
    folder = tmp_path / "in" / "events"
    folder.mkdir(parents=True)
    if request.param == "parquet":
        pq.write_table(ROWS, folder / "part-0.parquet")
    else:
        pcsv.write_csv(ROWS, folder / "part-0.csv")
    with sqlite_container(tmp_path) as c:
        ws = c.workspaces.ensure_workspace("t")
        url = (tmp_path / "in").as_uri()
        conn = c.connections.create(ws, f"files{next(_names)}", "files", {"url": url}, None)
        yield Files(c, ws, conn.id)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        # PostgreSQL and MariaDB compare a DATE with a timestamp as its midnight, in UTC; the
        # bound used to be cast to a date in its own offset: [1, 2, 3, 4], [1, 2, 3, 4], [1].
        ({"dateFrom": "2026-01-01T12:00:00Z"}, [2, 3, 4]),
        ({"dateFrom": "2026-01-01T19:00:00-05:00"}, [2, 3, 4]),  # 2026-01-02T00:00Z
        ({"dateTo": "2026-01-02T12:00:00Z", "dateToExclusive": True}, [1, 2]),
        ({"dateTo": "2026-01-02T00:00:00+01:00"}, [1]),  # 2026-01-01T23:00Z; was [1, 2]
        ({"dateFrom": "2026-01-02", "dateTo": "2026-01-03"}, [2, 3]),
        ({"dateFrom": "2026-01-02T00:00:00Z", "dateTo": "2026-01-03T00:00:00Z"}, [2, 3]),
    ],
)
def test_a_timestamp_bound_on_a_date_column_compares_instants_in_utc(
    files: Files, options: dict[str, Any], expected: list[int]
) -> None:
    assert files.ids(**options) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # SQL truncates (-4 % 3 = -1, 7 % -3 = 1); Arrow's modulo floors: [], [1, 3], [].
        ("a % 3 = -1", [1]),
        ("a % 3 = 2", [3]),
        ("a % -3 = 1", [2]),
        # SQL's trim() removes spaces, not a tab or a no-break space: was [1, 2, 3, 4].
        ("trim(s) = 'x'", [1, 3]),
        ("length(trim(s)) = 1", [1, 3]),
        ("trim(trailing from s) = ' x'", [1]),
        # An offset or Z is an instant; the column holds UTC (it used to fail the run).
        ("ts > '2026-01-01T11:00:00Z'", [2, 3, 4]),
        ("ts < '2026-01-01T13:00:00+02:00'", [1]),
        ("ts = '2026-01-02T05:30:00+05:30'", [3]),
        # Numbers compare by value: no integer is 2.5 (the run used to fail on it).
        ("n IN (2, 2.5)", [2]),
        ("n NOT IN (2.5)", [2, 3, 4]),
    ],
)
def test_where_clause_means_what_it_means_in_sql(
    files: Files, where: str, expected: list[int]
) -> None:
    assert files.ids(whereClause=where) == expected


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([{"n": None}], []),  # used to match the NULL row
        ([{"n": None}, {"n": 3}], [3]),
        ([{"n": None, "id": 1}], []),
    ],
)
def test_a_null_key_value_matches_nothing(
    files: Files, rows: list[dict[str, Any]], expected: list[int]
) -> None:
    """SQL's = and IN are never true for NULL: no source selects a row by a NULL key."""
    assert files.ids(primary_key=[], selectAll=False, rows=rows) == expected


def test_decimal_literals_are_exact(files: Files) -> None:
    """A decimal literal is a decimal, not a float rounded to 12345678901234568."""
    assert files.ids(whereClause="amount = 12345678901234567.1") == [1]
    assert files.ids(whereClause="amount > 12345678901234567.1") == [2]
    assert files.ids(whereClause="amount IN (12345678901234567.1, 1.25)") == [1]
    assert files.ids(whereClause="n < 2.5 AND n * 1.5 > 2") == [2]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("length(n) = 1", "length() takes text, but column 'n' is int64 (in 'LENGTH(n)')"),
        ("lower(a) = '2'", "lower() takes text, but column 'a' is int64 (in 'LOWER(a)')"),
        ("abs(s) = 1", "abs() takes numbers, but column 's' is string (in 'ABS(s)')"),
        ("s % 2 = 1", "% takes numbers, but column 's' is string (in 's % 2')"),
    ],
)
def test_a_function_of_the_wrong_type_fails_the_run_clearly(
    files: Files, where: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Not Arrow's "Function 'utf8_length' has no kernel matching input types (int64)",
    logged as an unexpected failure with its traceback."""
    with caplog.at_level(logging.ERROR):
        record = files.run(whereClause=where)
    assert record.status is RunStatus.FAILED
    assert record.error_message == f"whereClause: {message}"
    assert not [r for r in caplog.records if "unexpectedly" in r.getMessage()]
