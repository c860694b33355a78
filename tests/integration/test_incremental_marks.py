"""What an incremental run's mark covers: a PostgreSQL ``real`` cursor's maximum read exactly,
records whose cursor is NULL (never taken, and said so), and a trigger's own narrowing options
(dateFrom, whereClause, rows), which take part of the window and so keep the watermark."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import sqlite3
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from egress.container import Container
from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.errors import Invalid
from egress.domain.identity import ADMIN
from egress.domain.status import RunStatus
from tests.conftest import MysqlDatabase, PgDatabase, make_settings
from tests.support.factories import source_connection, submitted_configuration
from tests.support.migrated import migrate

# PostgreSQL's snapshot and MariaDB's open transactions are the server's: as test_incremental.
pytestmark = pytest.mark.serial

_names = itertools.count()


@dataclass
class Env:
    c: Container
    ws: str
    cfg: str
    fmt: str

    def run(self, **options: Any) -> tuple[list[int], list[str]]:
        """Trigger an incremental run and carry it out: the ids it delivered, its warnings."""
        execution, _ = self.c.services.executions.trigger(
            self.ws, self.cfg, {"extractOnlyNew": True, **options}
        )
        assert self.c.worker().run_once()
        run = self.c.executions.get(self.ws, self.cfg, execution.id).latest
        assert run.status in (RunStatus.COMPLETED, RunStatus.COMPLETED_NO_DATA), run.error_message
        self.last = execution.id
        return self._ids(run.files[0].storage_key if run.files else None), list(run.warnings)

    def _ids(self, key: str | None) -> list[int]:
        if key is None:
            return []
        data = b"".join(self.c.storage.stream(key))
        if self.fmt == "parquet":
            return sorted(pq.read_table(io.BytesIO(data)).column("id").to_pylist())
        if self.fmt == "jsonl":
            return sorted(json.loads(line)["id"] for line in data.splitlines())
        return sorted(int(r["id"]) for r in csv.DictReader(io.StringIO(data.decode())))

    def window(self) -> dict[str, Any]:
        window = self.c.executions.get(self.ws, self.cfg, self.last).spec.window
        assert window is not None
        return window.to_json()

    def watermark(self) -> Any:
        return self.c.configurations.get(self.ws, self.cfg).watermark


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings)
    yield container
    container.engine.dispose()


def _env(
    c: Container,
    kind: str,
    settings: dict[str, Any],
    table: str,
    cursor: str = "c",
    fmt: str = "csv",
    date_field: str | None = None,
    secrets: dict[str, str] | None = None,
    **overrides: Any,
) -> Env:
    ws = c.workspaces.ensure_workspace("t")
    conn = source_connection(c, ws, f"src{next(_names)}", kind, settings, secrets)
    tpl = c.services.catalog.create_custom_template(
        ws, conn, f"tpl{next(_names)}", table, None, ["id"], cursor, date_field
    )
    # Lag 0: the lagged sources take what they see (the lag's rules: test_incremental).
    overrides.setdefault("incremental_lag", 0)
    cfg = submitted_configuration(c, ws, tpl.id, f"cfg{next(_names)}", format=fmt, **overrides)
    return Env(c, ws, cfg, fmt)


def _pg_settings(db: PgDatabase) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"}


def _pg(db: PgDatabase, *statements: str) -> None:
    with db.connect() as conn:
        for statement in statements:
            conn.execute(statement)


# ------------------------------------------------------------ a PostgreSQL real (float4) cursor
def _as_real(value: float) -> float:
    # The stored single, as double precision reads it: 0.2 -> 0.20000000298023224.
    return float(struct.unpack("f", struct.pack("f", value))[0])


@pytest.mark.parametrize(
    ("fmt", "relation", "parallelism"),
    [
        ("csv", "t", 1),  # COPY, the mark read in its snapshot over psycopg
        ("jsonl", "t", 1),
        ("parquet", "t", 1),  # Arrow, the mark read over ADBC
        ("csv", "t", 2),  # parallel ranges in the one exported snapshot
        ("csv", "v", 1),  # a view: no snapshot, the mark is max_value's
        ("parquet", "v", 1),
    ],
)
def test_postgres_real_cursor_delivers_the_row_holding_the_mark(
    c: Container, pg_db: PgDatabase, fmt: str, relation: str, parallelism: int
) -> None:
    """The mark of a ``real`` cursor was read as the double of its shortest text (0.2), below
    the stored 0.20000000298023224: ``c <= 0.2`` left the row holding it out of its run, and
    it came only after a later insert moved the mark past it."""
    _pg(
        pg_db,
        "CREATE TABLE t (id int PRIMARY KEY, c real)",
        "CREATE VIEW v AS SELECT * FROM t",
        "INSERT INTO t VALUES (1, 0.1), (2, 0.2)",
    )
    env = _env(
        c, "postgresql", _pg_settings(pg_db), f"public.{relation}", fmt=fmt, parallelism=parallelism
    )
    assert env.run()[0] == [1, 2]
    assert env.window()["high"] == env.watermark() == _as_real(0.2)
    assert env.run()[0] == []
    _pg(pg_db, "INSERT INTO t VALUES (3, 0.3)")
    assert env.run()[0] == [3]
    assert env.watermark() == _as_real(0.3)
    assert env.run()[0] == []


# ------------------------------------------------------------------------- NULL cursors
def _null_table(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, ...]:
    """A table t(id, c) with rows (1, 1), (2, NULL), (3, 2) on ``kind``: its connection
    settings and secrets, its name, and how to run a statement on it."""
    create = "CREATE TABLE t (id int PRIMARY KEY, c int)"
    rows = "INSERT INTO t VALUES (1, 1), (2, NULL), (3, 2)"
    execute: Callable[[str], None]
    if kind == "postgresql":
        db: PgDatabase = request.getfixturevalue("pg_db")
        _pg(db, create, rows)
        return _pg_settings(db), None, "public.t", lambda s: _pg(db, s)
    if kind == "mysql":
        my: MysqlDatabase = request.getfixturevalue("mysql_db")

        def execute(statement: str) -> None:
            with my.connect() as conn, conn.cursor() as cur:
                cur.execute(statement)  # autocommit

        execute(create)
        execute(rows)
        # Without PROCESS: what other sessions of the shared server hold open does not matter.
        settings, secrets = request.getfixturevalue("mysql_reader")
        return settings, secrets, f"{my.name}.t", execute
    path = tmp_path / "src.db"

    def execute(statement: str) -> None:
        with sqlite3.connect(path) as db3:
            db3.execute(statement)
        db3.close()

    execute(create)
    execute(rows)
    return {"path": str(path)}, None, "main.t", execute


@pytest.mark.parametrize("kind", ["postgresql", "mysql", "sqlite"])
def test_records_with_a_null_cursor_are_never_taken_and_each_run_says_so(
    c: Container, kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A NULL cursor is never in (watermark, mark], on the first run as on every later one:
    each run that leaves such records out says how many, naming the cursor."""
    settings, secrets, table, execute = _null_table(kind, request, tmp_path)
    env = _env(c, kind, settings, table, secrets=secrets)
    ids, warnings = env.run()
    assert ids == [1, 3]
    assert env.watermark() == 2
    (note,) = [w for w in warnings if "NULL" in w]
    assert note.startswith("1 record has no value (NULL) in the cursorField 'c'")
    assert 'whereClause "c IS NULL"' in note

    execute("INSERT INTO t VALUES (4, NULL), (5, 3)")
    ids, warnings = env.run()
    assert ids == [5]
    assert env.watermark() == 3
    assert any(w.startswith("2 records have no value (NULL) in the cursorField") for w in warnings)

    execute("UPDATE t SET c = 4 WHERE c IS NULL")
    ids, warnings = env.run()
    assert ids == [2, 4]
    assert not any("NULL" in w for w in warnings)  # none left out: nothing to say


def test_a_csv_folders_records_with_an_empty_cursor_are_counted_on_every_run(
    c: Container, tmp_path: Path
) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "a.csv").write_text("id,c\n1,1\n2,\n3,2\n")
    env = _env(c, "files", {"url": tmp_path.as_uri()}, "t")
    ids, warnings = env.run()
    assert ids == [1, 3]
    assert [w for w in warnings if "NULL" in w] == [
        "1 record has no value (NULL) in the cursorField 'c': incremental runs never take them"
        ' (take them with extractOnlyNew: false and whereClause "c IS NULL", or give them a'
        " value)"
    ]
    (folder / "b.csv").write_text("id,c\n4,\n5,3\n")
    ids, warnings = env.run()
    assert ids == [5]
    assert any(w.startswith("2 records have no value (NULL)") for w in warnings)


# ------------------------------------------------------------- a trigger's own narrowing
@pytest.mark.parametrize(
    ("options", "narrowed", "taken"),
    [
        ({"selectAll": False, "rows": [{"id": 1}]}, "rows", [1]),
        ({"whereClause": "x = 1"}, "whereClause", [1]),
        ({"dateFrom": "2026-01-03"}, "dateFrom", [3]),
        ({"dateTo": "2026-01-01"}, "dateTo", [1]),
    ],
)
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_trigger_narrowing_an_incremental_run_keeps_the_watermark(
    c: Container,
    kind: str,
    options: dict[str, Any],
    narrowed: str,
    taken: list[int],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """The run takes the new records its own options keep, and moves nothing: the records of
    its window they leave out are taken by the next incremental run (the mark is the whole
    table's; moving the watermark to it lost them)."""
    create = "CREATE TABLE t (id int PRIMARY KEY, c int, d date, x int)"
    rows = "INSERT INTO t VALUES (1, 1, '2026-01-01', 1), (2, 2, '2026-01-02', 2),"
    rows += " (3, 3, '2026-01-03', 3)"
    if kind == "postgresql":
        db: PgDatabase = request.getfixturevalue("pg_db")
        _pg(db, create, rows)
        settings, table = _pg_settings(db), "public.t"
    else:
        path = tmp_path / "src.db"
        with sqlite3.connect(path) as db3:
            db3.execute(create)
            db3.execute(rows)
        db3.close()
        settings, table = {"path": str(path)}, "main.t"
    env = _env(c, kind, settings, table, date_field="d")

    ids, warnings = env.run(**options)
    assert ids == taken
    assert env.watermark() is None
    assert env.window()["keepsWatermark"] is True
    (note,) = [w for w in warnings if "watermark" in w]
    assert f"extractOnlyNew with this trigger's own {narrowed}" in note
    options_shown = env.c.executions.get(env.ws, env.cfg, env.last).spec.options.to_json()
    assert options_shown["narrowedBy"] == [narrowed]

    ids, warnings = env.run()
    assert ids == [1, 2, 3]
    assert env.watermark() == 3
    assert "keepsWatermark" not in env.window()
    assert not any("watermark does not move" in w for w in warnings)
    assert env.run()[0] == []


def test_the_configurations_own_filter_and_dates_move_the_watermark(
    c: Container, tmp_path: Path
) -> None:
    """A configuration's filter and date range narrow every run alike: the records they leave
    out are never wanted, so its runs move the watermark (and a trigger repeating them is no
    narrowing of its own)."""
    path = tmp_path / "src.db"
    with sqlite3.connect(path) as db3:
        db3.execute("CREATE TABLE t (id int PRIMARY KEY, c int, d date, x int)")
        db3.execute(
            "INSERT INTO t VALUES (1, 1, '2026-01-01', 1), (2, 2, '2026-01-02', 2),"
            " (3, 3, '2026-01-03', 1)"
        )
    db3.close()
    env = _env(
        c,
        "sqlite",
        {"path": str(path)},
        "main.t",
        date_field="d",
        filter="x = 1",
        date_from="2026-01-02",
    )
    ids, warnings = env.run()
    assert ids == [3]
    assert env.watermark() == 3
    assert not any("watermark" in w for w in warnings)
    with sqlite3.connect(path) as db3:
        db3.execute("INSERT INTO t VALUES (4, 4, '2026-01-04', 1), (5, 5, '2026-01-05', 2)")
    db3.close()
    assert env.run(whereClause="x = 1", dateFrom="2026-01-02")[0] == [4]
    assert env.watermark() == 5


# ------------------------------------------------- MySQL cursors whose MAX is not the column's
def _mysql_table(request: pytest.FixtureRequest, create: str) -> tuple[Any, ...]:
    my: MysqlDatabase = request.getfixturevalue("mysql_db")

    def execute(statement: str) -> None:
        with my.connect() as conn, conn.cursor() as cur:
            cur.execute(statement)  # autocommit

    execute(create)
    settings, secrets = request.getfixturevalue("mysql_reader")
    return settings, secrets, f"{my.name}.t", execute


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("BIT(8)", ["1", "2", "3", "b'11111111'"]),
        ("BIT(64)", ["1", "2", "300", "18446744073709551615"]),
        ("VARBINARY(8)", ["x'01'", "x'02'", "x'0201'", "x'ff'"]),
        ("BINARY(2)", ["x'0001'", "x'0002'", "x'0100'", "x'ff00'"]),
    ],
)
def test_mysql_bit_and_binary_cursors_take_each_new_record_once(
    c: Container, request: pytest.FixtureRequest, column: str, values: list[str]
) -> None:
    """MAX() of a BIT column is its bytes, and a binary mark was stored as hex text and bound
    back as that text: every run after the first took nothing while the watermark moved."""
    settings, secrets, table, execute = _mysql_table(
        request, f"CREATE TABLE t (id int PRIMARY KEY, c {column})"
    )
    env = _env(c, "mysql", settings, table, secrets=secrets)
    execute(f"INSERT INTO t VALUES (1, {values[0]})")
    assert env.run()[0] == [1]
    execute(f"INSERT INTO t VALUES (2, {values[1]})")
    assert env.run()[0] == [2]
    execute(f"INSERT INTO t VALUES (3, {values[2]}), (4, {values[3]})")
    assert env.run()[0] == [3, 4]
    assert env.run()[0] == []


def test_a_mysql_time_column_cannot_be_a_cursor(
    c: Container, request: pytest.FixtureRequest
) -> None:
    """TIME is a span (up to ±838:59:59): its marks were compared and bound as
    ``str(timedelta)`` text, so runs after the first took nothing (or nothing at all past
    24 hours) while COMPLETED."""
    settings, secrets, table, _ = _mysql_table(
        request, "CREATE TABLE t (id int PRIMARY KEY, c TIME)"
    )
    ws = c.workspaces.ensure_workspace("t")
    conn = source_connection(c, ws, "times", "mysql", settings, secrets)
    with pytest.raises(Invalid) as refused:
        c.services.catalog.create_custom_template(ws, conn, "bad", table, None, ["id"], "c", None)
    (problem,) = refused.value.errors
    assert (problem.loc, problem.msg) == (
        ("body", "cursor_field"),
        "'c' cannot be a cursor: a duration is a span of time, not a position in the table",
    )
    # A template made before the rule: its incremental run fails saying so, moving nothing.
    fields = [ColumnInfo("id", "int32", False), ColumnInfo("c", "duration", True)]
    schema, name = table.split(".")
    tpl = c.templates.create_custom(
        ws, conn, "older", TableRef(schema, name), fields, ["id"], "c", None
    )
    cfg = submitted_configuration(c, ws, tpl.id, "older", format="csv")
    execution, _ = c.services.executions.trigger(ws, cfg, {"extractOnlyNew": True})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, execution.id).latest
    assert (run.status, run.error_message) == (
        RunStatus.FAILED,
        "the cursorField 'c' cannot take only new records: a duration is a span of time, not "
        "a position in the table",
    )
    assert c.configurations.get(ws, cfg).watermark is None


def test_a_postgres_time_cursor_takes_the_last_time_of_day(c: Container, pg_db: PgDatabase) -> None:
    """``24:00:00`` is a PostgreSQL time no Python time holds: reading it as the mark failed
    every incremental run until the row went."""
    _pg(
        pg_db,
        "CREATE TABLE t (id int PRIMARY KEY, c time)",
        "INSERT INTO t VALUES (1, '10:00:00.5'), (2, '23:59:59.999999')",
    )
    env = _env(c, "postgresql", _pg_settings(pg_db), "public.t")
    assert env.run()[0] == [1, 2]
    _pg(pg_db, "INSERT INTO t VALUES (3, '24:00:00')")
    assert env.run()[0] == [3]
    assert env.watermark() == "24:00:00"
    assert env.run()[0] == []


def _endless_mark(
    c: Container, pg_db: PgDatabase, case: tuple[str, str, str], rows: str, later: str, where: str
) -> str | None:
    """A cursor ``c`` of type ``kind`` over ``rows``, read as ``relation`` (``t``, or the view
    ``v``) in ``fmt``: the incremental run's error (its watermark unmoved); then a SQL
    template that leaves the endless records out (``WHERE c < where``) takes the first row,
    and, once ``later`` is inserted, the new one."""
    fmt, relation, kind = case
    _pg(
        pg_db,
        f"CREATE TABLE t (id int PRIMARY KEY, c {kind})",
        "CREATE VIEW v AS SELECT * FROM t",
        f"INSERT INTO t VALUES {rows}",
    )
    settings = _pg_settings(pg_db)
    env = _env(c, "postgresql", settings, f"public.{relation}", fmt=fmt)
    execution, _ = c.services.executions.trigger(env.ws, env.cfg, {"extractOnlyNew": True})
    assert c.worker().run_once()
    run = c.executions.get(env.ws, env.cfg, execution.id).latest
    assert run.status == RunStatus.FAILED
    assert env.watermark() is None
    conn = source_connection(c, env.ws, "template", "postgresql", settings, None)
    query = f"SELECT * FROM {relation} WHERE c < '{where}'"
    tpl = c.services.catalog.create_query_template(
        env.ws, conn, "finite", query, ["id"], "c", None, role=ADMIN
    )
    cfg = submitted_configuration(c, env.ws, tpl.id, "finite", format=fmt, incremental_lag=0)
    finite = Env(c, env.ws, cfg, fmt)
    assert finite.run()[0] == [1]
    _pg(pg_db, f"INSERT INTO t VALUES (3, '{later}')")
    assert finite.run()[0] == [3]
    return run.error_message


# The mark read in its snapshot over psycopg (csv) or ADBC (parquet); a view has no snapshot:
# the mark is max_value's.
READS = [("csv", "t"), ("parquet", "t"), ("csv", "v")]


@pytest.mark.parametrize(
    ("read", "kind", "high"),
    list(
        zip(
            READS,
            ["timestamptz", "timestamp", "date"],
            ["infinity", "10000-01-01 00:00:00", "infinity"],
            strict=True,
        )
    ),
)
def test_a_postgres_date_cursor_beyond_year_9999_fails_naming_it_and_a_template_goes_on(
    c: Container, pg_db: PgDatabase, read: tuple[str, str], kind: str, high: str
) -> None:
    """``infinity`` or year 10000 as a date cursor's greatest value is no Python date: every
    run failed with the driver's text (``timestamp too large (after year 10K)``, or ADBC's
    ``date value out of range``), naming no column; now it names it and the ways out, and a
    SQL template that leaves such records out lets the runs go on."""
    rows = f"(1, '2026-01-01'), (2, '{high}')"
    error = _endless_mark(c, pg_db, (*read, kind), rows, "2026-02-01", "10000-01-01")
    assert error == (
        f"cursorField 'c' holds '{high}' as its greatest value, and an incremental mark is a"
        " date or time within years 1-9999, so no run can read past it: give those records a"
        " value within those years, or read the table through a SQL template that leaves them"
        " out (WHERE c < '10000-01-01')"
    )


@pytest.mark.parametrize(
    ("read", "kind", "high"),
    list(zip(READS, ["float8", "float8", "numeric"], ["NaN", "Infinity", "NaN"], strict=True)),
)
def test_a_postgres_number_cursor_at_nan_or_infinity_fails_naming_it(
    c: Container, pg_db: PgDatabase, read: tuple[str, str], kind: str, high: str
) -> None:
    """PostgreSQL sorts NaN above every number: a NaN (or +Infinity) cursor value became the
    watermark, and every later run was COMPLETED_NO_DATA while new rows arrived, for ever."""
    error = _endless_mark(c, pg_db, (*read, kind), f"(1, 1.5), (2, '{high}')", "2.5", "Infinity")
    assert error == (
        f"cursorField 'c' holds {high} as its greatest value, and no value comes after it, so"
        " incremental runs would take nothing new, ever: give those records a number, or leave"
        " them out of what the template reads (a SQL template's WHERE c < 'Infinity')"
    )


def test_a_files_float_cursor_holding_nan_fails_naming_it(c: Container, tmp_path: Path) -> None:
    """Arrow's maximum skips NaN, and no comparison takes a NaN record: its record was never
    delivered, without a word. As on PostgreSQL, the run now fails naming it."""
    root = tmp_path / "in"
    (root / "t").mkdir(parents=True)
    pq.write_table(pa.table({"id": [1, 2], "c": [1.5, math.nan]}), root / "t" / "a.parquet")
    env = _env(c, "files", {"url": root.as_uri()}, "t")
    execution, _ = c.services.executions.trigger(env.ws, env.cfg, {"extractOnlyNew": True})
    assert c.worker().run_once()
    run = c.executions.get(env.ws, env.cfg, execution.id).latest
    assert run.status == RunStatus.FAILED
    assert (run.error_message or "").startswith("cursorField 'c' holds NaN as its greatest value")
    assert env.watermark() is None
