"""Run options that COMPLETED with the wrong records, against real PostgreSQL, MariaDB and
SQLite sources (each test names the records every source must deliver):

- A whereClause decimal literal was bound as a float: ``amount = 12345678901234567.1`` matched
  nothing on PostgreSQL and both neighbours on MariaDB (a DOUBLE comparison).
- SQLite compared a date or time column's stored text with Egress's own text: a DATE with
  ``dateToExclusive`` kept the end day ('2026-01-02' < '2026-01-02 00:00:00' as text), ``T``,
  ``Z``, offsets and unix seconds fell on the wrong side of a range, a delivered timestamp key
  matched nothing, ``ts = '2026-01-01'`` nothing, and an incremental mark was the greatest
  text, not the latest instant (a later row in another spelling was never taken).
- SQLite's LIKE had no escape character: ``s LIKE 'a\\_c'`` matched nothing.
- A whereClause timestamp or key with ``Z`` or an offset lost the offset on PostgreSQL's
  ``timestamp`` and MariaDB's DATETIME and TIMESTAMP (the wall time was compared).
"""

from __future__ import annotations

import csv
import io
import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress.container import Container
from egress.domain.errors import Invalid
from egress.domain.status import RunStatus
from tests.conftest import MysqlDatabase, PgDatabase, make_settings
from tests.support.factories import source_connection, submitted_configuration
from tests.support.migrated import migrate

_names = itertools.count()


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings)
    yield container
    container.engine.dispose()


class Table:
    """A configuration over one source table (CSV): runs it with options."""

    def __init__(
        self,
        c: Container,
        kind: str,
        settings: dict[str, Any],
        table: str,
        key: list[str],
        date_field: str | None = None,
        cursor: str | None = None,
    ) -> None:
        self.c = c
        self.ws = c.workspaces.ensure_workspace("t")
        conn = source_connection(c, self.ws, f"src{next(_names)}", kind, settings)
        tpl = c.services.catalog.create_custom_template(
            self.ws, conn, f"tpl{next(_names)}", table, None, key, cursor, date_field
        )
        self.cfg = submitted_configuration(c, self.ws, tpl.id, f"cfg{next(_names)}")
        c.configurations.update(self.ws, self.cfg, {"incremental_lag": 0.0})

    def run(self, **options: Any) -> tuple[RunStatus, str | None, list[dict[str, str]]]:
        execution, _ = self.c.services.executions.trigger(self.ws, self.cfg, options)
        assert self.c.worker().run_once()
        record = self.c.executions.get(self.ws, self.cfg, execution.id).latest
        if not record.files:
            return record.status, record.error_message, []
        data = b"".join(self.c.storage.stream(record.files[0].storage_key)).decode()
        return record.status, record.error_message, list(csv.DictReader(io.StringIO(data)))

    def rows(self, **options: Any) -> list[dict[str, str]]:
        status, error, rows = self.run(**options)
        assert status in (RunStatus.COMPLETED, RunStatus.COMPLETED_NO_DATA), error
        return rows

    def ids(self, **options: Any) -> list[int]:
        return sorted(int(r["id"]) for r in self.rows(**options))


def _sqlite(tmp_path: Path, table: str, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    path = tmp_path / f"src{next(_names)}.db"
    with sqlite3.connect(path) as db:
        db.execute(table)
        db.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(rows[0]))})", rows)
    db.close()
    return {"path": str(path)}


def _insert_sqlite(settings: dict[str, Any], rows: list[tuple[Any, ...]]) -> None:
    with sqlite3.connect(settings["path"]) as db:
        db.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(rows[0]))})", rows)
    db.close()


def _pg(db: PgDatabase, *statements: str) -> dict[str, Any]:
    with db.connect() as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]
    return {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"}


def _mysql(db: MysqlDatabase, *statements: str) -> dict[str, Any]:
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")  # TIMESTAMP values as written, in UTC
        for statement in statements:
            cur.execute(statement)
    return dict(db.settings)


# ---- decimal literals -----------------------------------------------------------------------


def test_decimal_literals_are_exact_on_postgresql(c: Container, pg_db: PgDatabase) -> None:
    settings = _pg(
        pg_db,
        "CREATE TABLE t (id int PRIMARY KEY, amount numeric(20,1), f float8)",
        "INSERT INTO t VALUES (1, 12345678901234567.1, 0.5), (2, 12345678901234567.2, 1.5)",
    )
    table = Table(c, "postgresql", settings, "public.t", ["id"])
    assert table.ids(whereClause="amount = 12345678901234567.1") == [1]
    assert table.ids(whereClause="amount > 12345678901234567.1") == [2]
    assert table.ids(whereClause="amount IN (12345678901234567.2)") == [2]
    assert table.ids(whereClause="f > 0.5") == [2]  # numeric against float8 still compares


def test_decimal_literals_are_exact_on_mysql(c: Container, mysql_db: MysqlDatabase) -> None:
    settings = _mysql(
        mysql_db,
        "CREATE TABLE t (id int PRIMARY KEY, amount decimal(20,1), f double)",
        "INSERT INTO t VALUES (1, 12345678901234567.1, 0.5), (2, 12345678901234567.2, 1.5)",
    )
    table = Table(c, "mysql", settings, f"{mysql_db.name}.t", ["id"])
    assert table.ids(whereClause="amount = 12345678901234567.1") == [1]
    assert table.ids(whereClause="amount > 12345678901234567.1") == [2]
    assert table.ids(whereClause="f > 0.5") == [2]


def test_decimal_literals_compare_as_numbers_on_sqlite(c: Container, tmp_path: Path) -> None:
    """An exact literal reaches SQLite as a REAL: as text it compared as text with an
    expression without affinity (abs(a) > '1.5' holds for every number)."""
    settings = _sqlite(
        tmp_path,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, amount DECIMAL(10,2))",
        [(1, 1, "0.10"), (2, -2, "2.50"), (3, 3, "12.5")],
    )
    table = Table(c, "sqlite", settings, "main.t", ["id"])
    assert table.ids(whereClause="abs(a) > 1.5") == [2, 3]
    assert table.ids(whereClause="a / 2.0 = 1.5") == [3]  # a REAL division
    assert table.ids(whereClause="amount = 0.1") == [1]
    assert table.ids(whereClause="amount * 1 > 2.5") == [3]


# ---- SQLite dates and times compared as instants ------------------------------------------

_DATES = "CREATE TABLE t (id INTEGER PRIMARY KEY, d DATE)"


def test_sqlite_date_column_ranges_take_whole_days(c: Container, tmp_path: Path) -> None:
    settings = _sqlite(
        tmp_path,
        _DATES,
        [(1, "2026-01-01"), (2, "2026-01-02"), (3, 1767398400), (4, "2026-02-01")],
    )  # 3: 2026-01-03 as unix seconds
    table = Table(c, "sqlite", settings, "main.t", ["id"], date_field="d")
    assert table.ids(dateFrom="2026-01-01", dateTo="2026-01-02", dateToExclusive=True) == [1]
    assert table.ids(dateFrom="2026-01-02", dateTo="2026-01-03") == [2, 3]
    assert table.ids(dateFrom="2026-01-01T12:00:00Z") == [2, 3, 4]
    # README: 2026-02-01T01:00:00+01:00 selects from the 2026-02-01 00:00:00 row
    assert table.ids(dateFrom="2026-02-01T01:00:00+01:00") == [4]


_TIMES = "CREATE TABLE t (id INTEGER PRIMARY KEY, ts DATETIME, tz TIMESTAMPTZ)"
_TIME_ROWS = [
    (1, "2026-01-01T05:00:00", "2026-01-01T05:00:00Z"),
    (2, "2026-01-01T12:00:00", "2026-01-01 07:00:00-05:00"),  # tz: 12:00Z
    (3, "2026-01-01T18:00:00Z", "2026-01-01 20:00:00+02:00"),  # tz: 18:00Z
    (4, 1767398400, "2026-01-03 00:00:00+00:00"),  # ts: 2026-01-03 00:00 as unix seconds
]


def test_sqlite_timestamps_in_any_iso_form_or_unix_seconds(c: Container, tmp_path: Path) -> None:
    settings = _sqlite(tmp_path, _TIMES, _TIME_ROWS)
    ts = Table(c, "sqlite", settings, "main.t", ["id"], date_field="ts")
    assert ts.ids(dateTo="2026-01-01T12:00:00Z") == [1, 2]
    assert ts.ids(dateFrom="2026-01-01T12:00:00Z") == [2, 3, 4]
    assert ts.ids(dateFrom="2026-01-02", dateTo="2026-01-03") == [4]
    tz = Table(c, "sqlite", settings, "main.t", ["id"], date_field="tz")
    assert tz.ids(dateTo="2026-01-01T12:00:00Z") == [1, 2]
    assert tz.ids(dateFrom="2026-01-01T12:00:00Z") == [2, 3, 4]
    assert tz.ids(dateTo="2026-01-03T00:00:00Z") == [1, 2, 3, 4]  # inclusive of '… +00:00'


def test_sqlite_a_delivered_timestamp_key_selects_its_row(c: Container, tmp_path: Path) -> None:
    settings = _sqlite(tmp_path, _TIMES, [*_TIME_ROWS, (5, "2026-01-01 12:00:00.5", None)])
    table = Table(c, "sqlite", settings, "main.t", ["ts"])
    delivered = {int(r["id"]): r["ts"] for r in table.rows()}
    for i in (2, 3, 4, 5):
        assert table.ids(selectAll=False, rows=[{"ts": delivered[i]}]) == [i]
    assert table.ids(selectAll=False, rows=[{"ts": "2026-01-01 12:00:00"}]) == [2]
    assert table.ids(selectAll=False, rows=[{"ts": 1767398400}]) == [4]


def test_sqlite_where_clause_compares_dates_and_times_as_instants(
    c: Container, tmp_path: Path
) -> None:
    settings = _sqlite(
        tmp_path,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, ts DATETIME, d DATE)",
        [
            (1, "2026-01-01", "2026-01-01"),
            (2, "2026-01-02T00:00:00Z", "2026-01-02"),
            (3, 1767265200, 1767398400),  # 2026-01-01 11:00, 2026-01-03
            (4, "not a date", None),
        ],
    )
    table = Table(c, "sqlite", settings, "main.t", ["id"])
    assert table.ids(whereClause="ts = '2026-01-01'") == [1]
    assert table.ids(whereClause="ts BETWEEN '2026-01-01' AND '2026-01-02'") == [1, 2, 3]
    assert table.ids(whereClause="ts IN ('2026-01-01T11:00:00Z', '2026-01-02')") == [2, 3]
    assert table.ids(whereClause="ts > '2026-01-01T12:00:00+01:00'") == [2]
    assert table.ids(whereClause="date(ts) = '2026-01-01'") == [1, 3]
    assert table.ids(whereClause="d < '2026-01-02 00:00:00'") == [1]
    assert table.ids(whereClause="ts < d") == [3]
    # Text that is no date compares as unknown (as NULL): a filter leaves its row out.
    assert table.ids(whereClause="ts >= '0001-01-01' OR ts IS NULL") == [1, 2, 3]
    status, error, _ = table.run(whereClause="ts > 'yesterday'")
    assert status is RunStatus.FAILED
    assert error == (
        "'yesterday' is compared with a date or time column but is neither an ISO 8601 date"
        " or timestamp nor unix seconds"
    )


def test_sqlite_incremental_marks_are_the_latest_instant(c: Container, tmp_path: Path) -> None:
    """The greatest text ('2026-01-01T10:00' > '2026-01-01 11:00') held the mark: the 11:00
    row was never taken."""
    settings = _sqlite(tmp_path, _TIMES, [(1, "2026-01-01T10:00:00", None)])
    table = Table(c, "sqlite", settings, "main.t", ["id"], cursor="ts")
    assert table.ids(extractOnlyNew=True) == [1]
    _insert_sqlite(settings, [(2, "2026-01-01 11:00:00", None), (3, 1767265200.5, None)])
    assert table.ids(extractOnlyNew=True) == [2, 3]
    assert c.configurations.get(table.ws, table.cfg).watermark == "2026-01-01 11:00:00.500000"
    _insert_sqlite(settings, [(4, "2026-01-01T09:00:00Z", None), (5, "2026-01-01T12:00Z", None)])
    assert table.ids(extractOnlyNew=True) == [5]
    # the mark as the column's value, as other sources give it
    assert c.configurations.get(table.ws, table.cfg).watermark == "2026-01-01 12:00:00"
    assert table.ids(extractOnlyNew=True) == []


# ---- SQLite LIKE ----------------------------------------------------------------------------


def test_sqlite_like_escapes_with_a_backslash(c: Container, tmp_path: Path) -> None:
    settings = _sqlite(
        tmp_path,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)",
        [(1, "abc"), (2, "a_c"), (3, "a\\c"), (4, "a%c")],
    )
    table = Table(c, "sqlite", settings, "main.t", ["id"])
    # PostgreSQL, MariaDB and files read these alike
    assert table.ids(whereClause="s LIKE 'a\\_c'") == [2]
    assert table.ids(whereClause="s LIKE 'a\\%c'") == [4]
    assert table.ids(whereClause="s LIKE 'a\\\\c'") == [3]
    assert table.ids(whereClause="s ILIKE 'A\\_C'") == [2]
    assert table.ids(whereClause="s NOT LIKE 'a\\_c'") == [1, 3, 4]


# ---- timestamp literals and keys with an offset --------------------------------------------


def test_timestamp_offsets_are_applied_on_postgresql(c: Container, pg_db: PgDatabase) -> None:
    settings = _pg(
        pg_db,
        "CREATE TABLE t (id int PRIMARY KEY, ts timestamp UNIQUE, tz timestamptz)",
        "INSERT INTO t VALUES (1, '2026-01-01 10:00', '2026-01-01 10:00Z'),"
        " (2, '2026-01-01 12:00', '2026-01-01 12:00Z')",
    )
    table = Table(c, "postgresql", settings, "public.t", ["id"])
    assert table.ids(whereClause="ts < '2026-01-01T13:00:00+02:00'") == [1]
    assert table.ids(whereClause="ts = '2026-01-01T10:00:00-02:00'") == [2]
    assert table.ids(whereClause="tz < '2026-01-01T13:00:00+02:00'") == [1]
    keyed = Table(c, "postgresql", settings, "public.t", ["ts"])
    assert keyed.ids(selectAll=False, rows=[{"ts": "2026-01-01T14:00:00+02:00"}]) == [2]


def test_timestamp_offsets_are_applied_on_mysql(c: Container, mysql_db: MysqlDatabase) -> None:
    settings = _mysql(
        mysql_db,
        "CREATE TABLE t (id int PRIMARY KEY, ts DATETIME UNIQUE, tz TIMESTAMP NULL)",
        "INSERT INTO t VALUES (1, '2026-01-01 10:00', '2026-01-01 10:00'),"
        " (2, '2026-01-01 12:00', '2026-01-01 12:00')",
    )
    table = Table(c, "mysql", settings, f"{mysql_db.name}.t", ["id"])
    assert table.ids(whereClause="ts < '2026-01-01T13:00:00+02:00'") == [1]
    assert table.ids(whereClause="ts = '2026-01-01T10:00:00-02:00'") == [2]
    assert table.ids(whereClause="tz < '2026-01-01T13:00:00+02:00'") == [1]
    keyed = Table(c, "mysql", settings, f"{mysql_db.name}.t", ["ts"])
    assert keyed.ids(selectAll=False, rows=[{"ts": "2026-01-01T14:00:00+02:00"}]) == [2]


# ---- text compared with a boolean column ----------------------------------------------------

_BOOLEAN_WHERE = [
    ("b = 'true'", [1]),  # MariaDB [2] (its BOOLEAN is a TINYINT: 'true' is 0), SQLite []
    ("b != 'true'", [2]),  # MariaDB [1], SQLite [1, 2]
    ("b <> 'TRUE'", [2]),
    ("b IN ('true')", [1]),
    ("b IN ('true', 'False')", [1, 2]),
    ("b NOT IN ('false')", [1]),
    ("b = 'false' OR b IS NULL", [2, 3]),
]


def test_text_compared_with_a_boolean_column_selects_the_same_rows_on_every_source(
    c: Container, pg_db: PgDatabase, mysql_db: MysqlDatabase, tmp_path: Path
) -> None:
    """A text literal compared with a boolean column is read as a boolean, as `day =
    '2026-01-31'` is read as a date: PostgreSQL and files did; MariaDB selected the opposite
    rows and SQLite (which stores 1 and 0) none. A seed-001 structured condition compiles to
    the same clause."""
    create = "CREATE TABLE t (id int PRIMARY KEY, b boolean)"
    insert = "INSERT INTO t VALUES (1, true), (2, false), (3, NULL)"
    folder = tmp_path / "files" / "t"
    folder.mkdir(parents=True)
    (folder / "part-0.csv").write_text("id,b\n1,true\n2,false\n3,\n")
    sqlite_rows: list[tuple[Any, ...]] = [(1, 1), (2, 0), (3, None)]
    tables = {
        "postgresql": Table(c, "postgresql", _pg(pg_db, create, insert), "public.t", ["id"]),
        "mysql": Table(c, "mysql", _mysql(mysql_db, create, insert), f"{mysql_db.name}.t", ["id"]),
        "sqlite": Table(
            c,
            "sqlite",
            _sqlite(tmp_path, "CREATE TABLE t (id integer PRIMARY KEY, b boolean)", sqlite_rows),
            "main.t",
            ["id"],
        ),
        "files": Table(c, "files", {"url": (tmp_path / "files").as_uri()}, "t", ["id"]),
    }
    got = {
        where: {k: t.ids(whereClause=where) for k, t in tables.items()}
        for where, _ in _BOOLEAN_WHERE
    }
    assert got == {where: {k: ids for k in tables} for where, ids in _BOOLEAN_WHERE}

    for table in tables.values():  # {"field": "b", "operator": "=", "value": "true"}
        c.services.configurations.update(
            table.ws, table.cfg, {"conditions": [{"field": "b", "operator": "=", "value": "true"}]}
        )
    assert {k: t.ids() for k, t in tables.items()} == {k: [1] for k in tables}


def test_text_no_boolean_is_spelt_as_is_refused_before_any_run(
    c: Container, tmp_path: Path
) -> None:
    """On the configuration (a whereClause or a structured condition) and on a trigger: a 422
    naming the column and the literal, not a run whose rows depend on the source."""
    settings = _sqlite(tmp_path, "CREATE TABLE t (id integer PRIMARY KEY, b boolean)", [(1, 1)])
    table = Table(c, "sqlite", settings, "main.t", ["id"])

    def message(part: str) -> str:
        return (
            "'yes' cannot be compared with boolean column 'b': write 'true' or 'false' (in any"
            f" letter case), or TRUE or FALSE (in {part!r})"
        )

    cases: list[tuple[Any, tuple[str, ...], str]] = [
        (
            lambda: c.services.executions.trigger(
                table.ws, table.cfg, {"whereClause": "b = 'yes'"}
            ),
            ("body", "where_clause"),
            message("b = 'yes'"),
        ),
        (
            lambda: c.services.configurations.update(table.ws, table.cfg, {"filter": "b = 'yes'"}),
            ("body", "where_clause"),
            message("b = 'yes'"),
        ),
        (
            lambda: c.services.configurations.update(
                table.ws,
                table.cfg,
                {"conditions": [{"field": "b", "operator": "=", "value": "yes"}]},
            ),
            ("body", "filters"),
            message("\"b\" = 'yes'"),
        ),
        (
            lambda: c.services.executions.trigger(
                table.ws, table.cfg, {"whereClause": "length(b, 2) = 1"}
            ),
            ("body", "where_clause"),
            "function length() takes 1 argument, not 2 (in 'length(b, 2)')",
        ),
    ]
    for attempt, loc, expected in cases:
        with pytest.raises(Invalid) as err:
            attempt()
        assert [(e.loc, e.msg) for e in err.value.errors] == [(loc, expected)]
    assert table.ids(whereClause="b = 'True'") == [1]
