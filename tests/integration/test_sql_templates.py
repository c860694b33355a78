"""SQL templates against real PostgreSQL, SQLite and MariaDB sources: a JOIN with a computed
column, its discovered fields, and runs that wrap it with a whereClause, a date range and an
incremental window, giving exactly the expected records."""

from __future__ import annotations

import csv
import io
import itertools
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from egress.container import Container
from egress.domain.catalog import ColumnInfo
from egress.domain.errors import Invalid
from egress.domain.identity import ADMIN
from egress.domain.status import RunStatus
from egress.sources import base
from tests.conftest import MysqlDatabase, PgDatabase, make_settings
from tests.support.factories import source_connection, submitted_configuration
from tests.support.migrated import migrate

START = datetime(2026, 1, 1)
REGIONS = ["EU", "NA", "APAC"]
CUSTOMERS = [(i, f"customer {i}", REGIONS[i % 3]) for i in range(1, 7)]
REGION = {cid: region for cid, _, region in CUSTOMERS}
NAME = {cid: name for cid, name, _ in CUSTOMERS}

# Generic SQL that every dialect reads alike: a JOIN and a computed column.
QUERY = (
    "SELECT o.id, c.name AS customer, c.region, o.amount, o.amount * 2 AS doubled, o.ordered_at "
    "FROM orders AS o JOIN customers AS c ON c.id = o.customer_id"
)
Order = tuple[int, int, Decimal, datetime]


def order(i: int, at: datetime | None = None) -> Order:
    return (
        i,
        i % 6 + 1,
        Decimal(i * 7 % 250) + Decimal("0.5"),
        at or START + timedelta(hours=7 * i),
    )


ORDERS = [order(i) for i in range(1, 121)]


@dataclass
class Source:
    kind: str
    settings: dict[str, Any]
    insert: Callable[[list[Order]], None]
    # The computed column's type: the source's own arithmetic on DECIMAL(10,2).
    doubled_type: str
    secrets: dict[str, str] | None = None


def _pg_source(db: PgDatabase) -> Source:
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE customers (id int PRIMARY KEY, name text, region text)")
        cur.execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int REFERENCES customers,"
            " amount numeric(10,2), ordered_at timestamp)"
        )
        cur.executemany("INSERT INTO customers VALUES (%s, %s, %s)", CUSTOMERS)

    def insert(rows: list[Order]) -> None:
        with db.connect() as conn, conn.cursor() as cur:
            cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s)", rows)

    settings = {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"}
    insert(ORDERS)
    return Source("postgresql", settings, insert, "decimal")


def _sqlite_source(path: Path) -> Source:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, region TEXT)")
        conn.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER,"
            " amount DECIMAL(10,2), ordered_at DATETIME)"
        )
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?)", CUSTOMERS)

    def insert(rows: list[Order]) -> None:
        with sqlite3.connect(path, timeout=30) as conn:
            conn.executemany(
                "INSERT INTO orders VALUES (?, ?, ?, ?)",
                [(i, cid, str(amount), at.isoformat(sep=" ")) for i, cid, amount, at in rows],
            )

    insert(ORDERS)
    # No declared type for a computed column: typed from its values (reals).
    return Source("sqlite", {"path": str(path)}, insert, "float64")


def _mysql_source(db: MysqlDatabase) -> Source:
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(40), region VARCHAR(10))"
        )
        cur.execute(
            "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id INT NOT NULL,"
            " amount DECIMAL(10,2), ordered_at DATETIME)"
        )
        cur.executemany("INSERT INTO customers VALUES (%s, %s, %s)", CUSTOMERS)

    def insert(rows: list[Order]) -> None:
        with db.connect() as conn, conn.cursor() as cur:
            cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s)", rows)

    insert(ORDERS)
    return Source("mysql", {**db.settings}, insert, "decimal(11,2)")


@pytest.fixture(params=["postgresql", "sqlite", "mysql"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Source:
    if request.param == "postgresql":
        return _pg_source(request.getfixturevalue("pg_db"))
    if request.param == "mysql":
        # Read by a user without PROCESS: the incremental run relies on its lag alone, whatever
        # other sessions of the shared server hold open (conftest ``mysql_reader``).
        settings, secrets = request.getfixturevalue("mysql_reader")
        source = _mysql_source(request.getfixturevalue("mysql_db"))
        return replace(source, settings=settings, secrets=secrets)
    return _sqlite_source(tmp_path / "shop.db")


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings)
    yield container
    container.engine.dispose()


_names = itertools.count()


@dataclass
class Env:
    c: Container
    ws: str
    connection_id: str

    def template(self, query: str = QUERY, **keys: Any) -> str:
        keys = {"primary_key": ["id"], "cursor_field": "id", "date_field": "ordered_at", **keys}
        tpl = self.c.services.catalog.create_query_template(
            self.ws, self.connection_id, f"sql_{next(_names)}", query, **keys, role=ADMIN
        )
        return tpl.id

    def run(self, cfg: str, **options: Any) -> list[dict[str, str]]:
        execution, _ = self.c.services.executions.trigger(self.ws, cfg, options)
        assert self.c.worker().run_once()
        run = self.c.executions.get(self.ws, cfg, execution.id).latest
        assert run is not None
        assert run.status in (RunStatus.COMPLETED, RunStatus.COMPLETED_NO_DATA), run.error_message
        if not run.files:
            return []
        data = b"".join(self.c.storage.stream(run.files[0].storage_key)).decode()
        return list(csv.DictReader(io.StringIO(data)))


@pytest.fixture
def env(c: Container, source: Source) -> Env:
    ws = c.workspaces.ensure_workspace("t")
    name = f"src{next(_names)}"
    return Env(c, ws, source_connection(c, ws, name, source.kind, source.settings, source.secrets))


def expected(rows: list[Order], keep: Callable[[Order], bool]) -> list[tuple[int, str, str]]:
    return [(o[0], NAME[o[1]], REGION[o[1]]) for o in rows if keep(o)]


def delivered(records: list[dict[str, str]]) -> list[tuple[int, str, str]]:
    return sorted((int(r["id"]), r["customer"], r["region"]) for r in records)


def test_the_query_columns_become_the_template_fields(env: Env, source: Source) -> None:
    tpl = env.c.templates.get(env.ws, env.template())
    assert tpl.query == QUERY and tpl.source is None
    assert [(f.name, f.type) for f in tpl.fields] == [
        ("id", "int64"),
        ("customer", "string"),
        ("region", "string"),
        ("amount", "decimal(10,2)"),
        ("doubled", source.doubled_type),
        ("ordered_at", "timestamp"),
    ]
    assert (tpl.primary_key, tpl.cursor_field, tpl.date_field) == (["id"], "id", "ordered_at")
    assert tpl.snapshot().query == QUERY


def test_filters_dates_and_the_incremental_window_wrap_the_query(env: Env, source: Source) -> None:
    # A query has no row versions to read a snapshot from: it waits out a safety lag, which
    # these writers (committing at once) do not need.
    # The filter and dates are the configuration's, so every run narrows alike and the
    # watermark moves (a trigger's own would keep it: test_incremental_marks).
    cfg = submitted_configuration(
        env.c,
        env.ws,
        env.template(),
        f"cfg{next(_names)}",
        incremental_lag=0,
        filter="region = 'EU' AND doubled > 100",
        date_from="2026-01-05",
        date_to="2026-01-25",
    )
    options = {"extractOnlyNew": True}
    lo, hi = datetime(2026, 1, 5), datetime(2026, 1, 26)

    def wanted(o: Order) -> bool:
        return REGION[o[1]] == "EU" and o[2] * 2 > 100 and lo <= o[3] < hi

    first = env.run(cfg, **options)
    assert delivered(first) == expected(ORDERS, wanted)
    assert first  # the filters leave something
    for record in first:  # the computed column arrives computed, whatever its type
        assert Decimal(record["doubled"]) == Decimal(record["amount"]) * 2

    # New orders inside the date range: the next incremental run takes exactly the new
    # ones that also pass the filter.
    new = [order(i, datetime(2026, 1, 10, i % 24)) for i in range(121, 133)]
    source.insert(new)
    assert delivered(env.run(cfg, **options)) == expected(new, wanted)
    assert env.run(cfg, **options) == []
    assert env.c.configurations.get(env.ws, cfg).watermark == 132


def test_the_arrow_path_reads_the_query_too(env: Env, tmp_path: Path) -> None:
    """Parquet never takes PostgreSQL's COPY path: the same query through Arrow batches."""
    cfg = submitted_configuration(
        env.c, env.ws, env.template(), f"pq{next(_names)}", format="parquet"
    )
    execution, _ = env.c.services.executions.trigger(env.ws, cfg, {"whereClause": "region = 'NA'"})
    assert env.c.worker().run_once()
    run = env.c.executions.get(env.ws, cfg, execution.id).latest
    assert run is not None and run.status is RunStatus.COMPLETED, run and run.error_message
    local = tmp_path / "out.parquet"
    local.write_bytes(b"".join(env.c.storage.stream(run.files[0].storage_key)))
    table = pq.read_table(local)
    assert sorted(table.column("id").to_pylist()) == [
        i for i, cid, _, _ in ORDERS if REGION[cid] == "NA"
    ]


def test_selected_rows_of_a_query_template(env: Env) -> None:
    cfg = submitted_configuration(env.c, env.ws, env.template(), f"rows{next(_names)}")
    records = env.run(cfg, selectAll=False, rows=[{"id": 7}, {"id": 99}])
    assert delivered(records) == expected(ORDERS, lambda o: o[0] in (7, 99))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT id FROM no_such_table", "the source cannot run it"),
        ("SELECT id, nope FROM orders", "the source cannot run it"),
        ("DELETE FROM orders", "must be a SELECT; found DELETE"),
        ("SELECT * FROM orders FOR UPDATE", "locking clause"),
        ("SELECT 1; DROP TABLE orders", "single statement"),
    ],
)
def test_bad_queries_are_refused_at_query(env: Env, query: str, message: str) -> None:
    with pytest.raises(Invalid) as err:
        env.template(query)
    assert message in err.value.detail
    assert err.value.errors[0].loc == ("body", "query")


def test_an_unknown_table_names_the_driver_message(env: Env, source: Source) -> None:
    with pytest.raises(Invalid) as err:
        env.template("SELECT id FROM no_such_table")
    assert "no_such_table" in err.value.detail


def test_keys_must_be_result_columns(env: Env) -> None:
    with pytest.raises(Invalid) as err:
        env.template(cursor_field="ordered")
    assert err.value.errors[0].loc == ("body", "cursor_field")


def test_repeated_column_names_are_refused(c: Container, pg_db: PgDatabase) -> None:
    source = _pg_source(pg_db)
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, "pg", source.kind, source.settings, None)
    with pytest.raises(Invalid, match="'id' more than once"):
        c.services.catalog.create_query_template(
            ws,
            conn.id,
            "dup",
            "SELECT o.id, c.id FROM orders o JOIN customers c ON c.id = o.customer_id",
            None,
            None,
            None,
            role=ADMIN,
        )


def test_a_writing_function_cannot_write_on_postgresql(c: Container, pg_db: PgDatabase) -> None:
    """Parsing lets functions through; the read-only session stops the ones that write."""
    source = _pg_source(pg_db)
    with pg_db.connect() as conn:
        conn.execute("CREATE SEQUENCE s")
    ws = c.workspaces.ensure_workspace("t")
    conn_id = c.connections.create(ws, "pg", source.kind, source.settings, None).id
    tpl = c.services.catalog.create_query_template(
        ws, conn_id, "seq", "SELECT nextval('s') AS n", None, None, None, role=ADMIN
    )
    assert tpl.fields == [ColumnInfo("n", "int64")]  # the probe produced no row
    cfg = submitted_configuration(c, ws, tpl.id, "seq")
    execution, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, execution.id).latest
    assert run is not None and run.status is RunStatus.FAILED
    assert "read-only transaction" in (run.error_message or "")
    with pg_db.connect() as conn:
        row = conn.execute("SELECT last_value, is_called FROM s").fetchone()
    assert row == (1, False)


def test_a_writing_function_cannot_write_on_mariadb(c: Container, mysql_db: MysqlDatabase) -> None:
    """MariaDB runs the function even for the LIMIT 0 probe: the read-only session refuses it,
    so the template is refused and nothing was written."""
    source = _mysql_source(mysql_db)
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE log (n INT)")
        cur.execute(
            "CREATE FUNCTION bump() RETURNS INT MODIFIES SQL DATA "
            "BEGIN INSERT INTO log VALUES (1); RETURN 1; END"
        )
    ws = c.workspaces.ensure_workspace("t")
    conn_id = c.connections.create(ws, "my", source.kind, source.settings, None).id
    with pytest.raises(Invalid, match="READ ONLY") as err:
        c.services.catalog.create_query_template(
            ws,
            conn_id,
            "bump",
            "SELECT id, bump() AS n FROM orders",
            None,
            None,
            None,
            role=ADMIN,
        )
    assert err.value.errors[0].loc == ("body", "query")
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM log")
        assert cur.fetchone() == (0,)


# Ordering 50 M generated rows: the sample that types the computed column waits for all of
# them. (PostgreSQL and MariaDB stop a LIMIT 0 probe before running the query, so only their
# statement limits guard them, untested here.)
SLOW_QUERY = (
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 50000000)"
    " SELECT x * 1.5 AS v FROM n ORDER BY v DESC"
)


def test_a_query_too_slow_to_describe_is_refused_in_time(
    c: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "PROBE_TIMEOUT_S", 0.5)
    source = _sqlite_source(tmp_path / "slow.db")
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, "slow", source.kind, source.settings, None)
    started = time.monotonic()
    with pytest.raises(Invalid) as err:
        c.services.catalog.create_query_template(
            ws, conn.id, "slow", SLOW_QUERY, None, None, None, role=ADMIN
        )
    assert time.monotonic() - started < 4
    assert err.value.errors[0].loc == ("body", "query")
    assert "did not return its columns within 0.5 s" in err.value.detail
