"""A column dropped from a source table after its template was discovered (issue 13, item 20):
a run that reads it fails up front naming it; a run that does not read it still completes;
listing the templates again refreshes the discovered one. That up-front check shares the
run's one PostgreSQL session with the estimate, the quoting and the COPY (issue 19: a session
is most of a tiny run's cost)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from egress.container import Container
from egress.db.executions import RunRecord
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from egress.sources.postgresql import PostgresSource
from tests.conftest import MysqlDatabase, PgDatabase, make_settings
from tests.support.factories import extract_once, submitted_configuration
from tests.support.migrated import migrate

Sql = Callable[[str], None]


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings)
    yield container
    container.engine.dispose()


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any], Sql]:
    """(type, settings, run DDL on it) for a source holding ``items (id, a, b)``."""
    if request.param == "postgresql":
        db: PgDatabase = request.getfixturevalue("pg_db")

        def pg(statement: str) -> None:
            with db.connect() as conn:
                conn.execute(statement)  # type: ignore[arg-type]

        settings = {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"}
        return "postgresql", settings, pg
    if request.param == "mysql":
        mdb: MysqlDatabase = request.getfixturevalue("mysql_db")

        def my(statement: str) -> None:
            with mdb.connect() as conn, conn.cursor() as cur:
                cur.execute(statement)

        return "mysql", dict(mdb.settings), my
    path = tmp_path / "drift.db"

    def lite(statement: str) -> None:
        with sqlite3.connect(path) as conn:
            conn.execute(statement)

    return "sqlite", {"path": str(path)}, lite


def test_a_dropped_column_fails_the_run_naming_it(
    c: Container, source: tuple[str, dict[str, Any], Sql]
) -> None:
    kind, settings, sql = source
    sql("CREATE TABLE items (id INT PRIMARY KEY, a VARCHAR(10), b VARCHAR(10), c VARCHAR(10))")
    sql("INSERT INTO items VALUES (1, 'a1', 'b1', 'c1')")
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, "src", kind, settings, None)
    tables = c.services.catalog.discover(ws, conn.id)
    tpl = next(t for t in c.templates.list_page(ws, conn.id, PageRequest()).items)
    assert [f.name for f in tpl.fields] == ["id", "a", "b", "c"], tables
    everything = submitted_configuration(c, ws, tpl.id, "everything")
    some = submitted_configuration(c, ws, tpl.id, "some", fields=["id", "a"])
    sql("ALTER TABLE items DROP COLUMN b")
    sql("ALTER TABLE items DROP COLUMN c")

    failed = _run(c, ws, everything)
    assert failed.status == RunStatus.FAILED
    assert failed.error_message is not None
    assert "no longer has the column(s) 'b', 'c' this run reads" in failed.error_message
    # Columns a run only filters on count too.
    filtered = _run(c, ws, some, whereClause="c = 'c1'")
    assert filtered.status == RunStatus.FAILED
    assert "no longer has the column(s) 'c' this run reads" in str(filtered.error_message)
    # A run that reads neither still delivers.
    assert _run(c, ws, some).status == RunStatus.COMPLETED

    # Listing refreshes the discovered template: a configuration made now reads what is there.
    c.services.catalog.discover(ws, conn.id)
    assert [f.name for f in c.templates.get(ws, tpl.id).fields] == ["id", "a"]
    assert _run(c, ws, submitted_configuration(c, ws, tpl.id, "after")).status == (
        RunStatus.COMPLETED
    )


def _run(c: Container, ws: str, cfg: str, **options: Any) -> RunRecord:
    execution, _ = c.services.executions.trigger(ws, cfg, options)
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, execution.id).latest
    assert run is not None
    return run


@pytest.mark.parametrize(("fmt", "rows"), [("csv", b'1,"a"\n2,"b"\n'), ("jsonl", b'"id":2')])
def test_a_run_opens_one_session(
    c: Container,
    pg_db: PgDatabase,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
    rows: bytes,
) -> None:
    """CSV reads on that session (COPY); JSONL reads on an ADBC session of its own."""
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE tiny (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO tiny VALUES (1, 'a'), (2, 'b')")
    opened: list[Any] = []
    connect = PostgresSource._psycopg

    def counted(self: PostgresSource) -> Any:
        opened.append(connect(self))
        return opened[-1]

    settings = {"host": "127.0.0.1", "port": 5432, "database": pg_db.name, "user": "postgres"}
    monkeypatch.setattr(PostgresSource, "_psycopg", counted)
    run, data = extract_once(c, "postgresql", settings, "tiny", fmt)
    assert run.status is RunStatus.COMPLETED and run.record_count == 2, run.error_message
    assert rows in data
    # One for discovering the template (an interactive call: closed), one for the whole run,
    # left idle for the worker's next run of the connection (test_source_sessions.py).
    assert len(opened) == 2
    assert opened[0].closed
    assert opened[1].info.transaction_status is psycopg.pq.TransactionStatus.IDLE
