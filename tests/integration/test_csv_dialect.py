"""csvDialect "postgres": a configuration's CSV in PostgreSQL's own text rendering, written by
plain ``COPY … TO STDOUT (FORMAT csv, HEADER)`` — byte for byte what that COPY gives — and
refused (422 naming the field) wherever it cannot be that. Export jobs take it too (the HTTP
face's cases are ``tests/e2e/test_export_csv_dialect.py``): a data table whose warehouse is
not PostgreSQL is refused naming the field, and a SQL_ASCII source fails the job saying why,
as an extraction's run does."""

from __future__ import annotations

import io
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from egress.container import Container
from egress.domain.errors import Invalid
from egress.domain.export import RequestStatus
from egress.domain.identity import Principal, Subject
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from tests.conftest import PgDatabase, make_settings
from tests.support.factories import submitted_configuration
from tests.support.migrated import migrate

TABLE = """CREATE TABLE t (
    id int PRIMARY KEY, f float8, n numeric(8,3), b boolean, ts timestamp, tz timestamptz,
    a int[], by bytea, s text)"""
ROWS = """INSERT INTO t VALUES
 (1, 0.1, 1.5, true, '2026-05-28 14:00:00.5', '2026-05-28 16:00:00+02', '{1,2}', '\\x00ff',
  'a, "b"' || chr(10) || 'c'),
 (2, 'NaN', NULL, false, 'infinity', '-infinity', '{}', '', ''),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"""


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings)
    yield container
    container.engine.dispose()


@pytest.fixture
def pg(pg_db: PgDatabase) -> PgDatabase:
    with pg_db.connect() as conn:
        conn.execute(TABLE)
        conn.execute(ROWS)
        # Settings a database may carry that change PostgreSQL's text: Egress's sessions pin
        # their own (bytea was written '\000\377' under this one).
        conn.execute(f"ALTER DATABASE \"{pg_db.name}\" SET bytea_output = 'escape'")
        conn.execute(f"ALTER DATABASE \"{pg_db.name}\" SET DateStyle = 'SQL, DMY'")
    return pg_db


def _template(c: Container, ws: str, kind: str, settings: dict[str, Any]) -> str:
    conn = c.connections.create(ws, f"{kind}_src", kind, settings, None)
    c.services.catalog.discover(ws, conn.id)
    page = c.templates.list_page(ws, conn.id, PageRequest(0, 100))
    return next(t.id for t in page.items if t.name.endswith("t"))


def _pg_template(c: Container, ws: str, pg: PgDatabase) -> str:
    settings = {"host": "127.0.0.1", "port": 5432, "database": pg.name, "user": "postgres"}
    return _template(c, ws, "postgresql", settings)


def test_postgres_dialect_writes_exactly_what_plain_copy_writes(
    c: Container, pg: PgDatabase
) -> None:
    ws = c.workspaces.ensure_workspace("t")
    tpl = _pg_template(c, ws, pg)
    cfg = submitted_configuration(c, ws, tpl, "native", csv_dialect="postgres")
    assert c.configurations.get(ws, cfg).csv_dialect == "postgres"
    ex, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, ex.id).latest
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert run.record_count == 3
    data = b"".join(c.storage.stream(run.files[0].storage_key))

    want = io.BytesIO()
    with pg.connect() as conn, conn.cursor() as cur:
        # Egress's session settings: ISO dates, UTC, shortest-exact floats.
        cur.execute("SET TIME ZONE 'UTC'")
        cur.execute("SET extra_float_digits = 1")
        cur.execute("SET bytea_output = 'hex'")
        cur.execute("SET DateStyle = 'ISO, YMD'")
        copy_sql = "COPY (SELECT * FROM t) TO STDOUT WITH (FORMAT csv, HEADER)"
        with cur.copy(copy_sql) as copy:  # type: ignore[arg-type]
            for chunk in copy:
                want.write(chunk)
    assert data == want.getvalue()
    assert data.decode().splitlines()[:2] == [
        "id,f,n,b,ts,tz,a,by,s",
        '1,0.1,1.500,t,2026-05-28 14:00:00.5,2026-05-28 14:00:00+00,"{1,2}",\\x00ff,"a, ""b""',
    ]
    assert data.decode().splitlines()[-2:] == ['2,NaN,,f,infinity,-infinity,{},\\x,""', "3,,,,,,,,"]


def test_postgres_dialect_is_refused_where_it_cannot_apply(
    c: Container, pg: PgDatabase, tmp_path: Path
) -> None:
    ws = c.workspaces.ensure_workspace("t")
    tpl = _pg_template(c, ws, pg)
    path = tmp_path / "s.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    lite = _template(c, ws, "sqlite", {"path": str(path)})
    cases: list[tuple[str, dict[str, Any], str]] = [
        (lite, {}, "this template reads a sqlite source"),
        (tpl, {"format": "jsonl"}, "renders CSV"),
        (tpl, {"split_by": "b", "file_name_pattern": "{configurationName}.{ext}"}, "no splitBy"),
    ]
    for i, (template, extra, message) in enumerate(cases):
        with pytest.raises(Invalid) as err:
            submitted_configuration(c, ws, template, f"x{i}", csv_dialect="postgres", **extra)
        assert message in str(err.value)
        assert "csv_dialect" in str(err.value.errors)
    # Egress's own rendering is the default, and may be named.
    cfg = submitted_configuration(c, ws, lite, "plain", csv_dialect="egress")
    assert c.configurations.get(ws, cfg).csv_dialect == "egress"


@pytest.fixture
def sql_ascii(postgres_admin_url: str) -> Iterator[str]:
    """A SQL_ASCII database holding ``t (id int PRIMARY KEY, s text)``."""
    name = f"egress_ascii_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' TEMPLATE template0")  # type: ignore[arg-type]
    url = postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, s text)")
        conn.execute("INSERT INTO t VALUES (1, 'plain')")
    yield name
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


def _user(ws: str) -> Principal:
    return Principal(ws, "editor", Subject("user", "id-ann", "ann"))


def test_a_data_table_of_a_sqlite_warehouse_is_refused_naming_the_field(
    c: Container, tmp_path: Path
) -> None:
    ws = c.workspaces.ensure_workspace("firm")
    src = tmp_path / "codes.db"
    with sqlite3.connect(src) as db:
        db.execute("CREATE TABLE codes (code TEXT PRIMARY KEY, label TEXT)")
        db.execute("INSERT INTO codes VALUES ('a', 'ay')")
    conn = c.connections.create(ws, "codes", "sqlite", {"path": str(src)}, None)
    c.services.catalog.discover(ws, conn.id)
    tpl = c.templates.list_page(ws, conn.id, PageRequest(0, 10)).items[0]
    destination = {"type": "dataTable", "dataTable": "codes", "mode": "upsert"}
    cfg = submitted_configuration(c, ws, tpl.id, "load", destination=destination)
    c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    with pytest.raises(Invalid) as err:
        c.services.exports.export(_user(ws), ws, "codes", None, "csv", None, "postgres")
    assert "this data table reads a sqlite source" in str(err.value)
    assert "csv_dialect" in str(err.value.errors)
    # Egress's rendering stays available there.
    view = c.services.exports.export(_user(ws), ws, "codes", None, "csv", None, "egress")
    assert view.status is RequestStatus.PENDING


def test_a_sql_ascii_source_fails_the_job_saying_why(c: Container, sql_ascii: str) -> None:
    ws = c.workspaces.ensure_workspace("firm")
    settings = {"host": "127.0.0.1", "port": 5432, "database": sql_ascii, "user": "postgres"}
    conn = c.connections.create(ws, "ascii", "postgresql", settings, None)
    c.services.catalog.discover(ws, conn.id)
    tpl = next(
        t
        for t in c.templates.list_page(ws, conn.id, PageRequest(0, 10)).items
        if t.name == "public.t"
    )
    p = _user(ws)
    view = c.services.exports.export(p, ws, f"t-{tpl.id}", None, "csv", None, "postgres")
    assert c.worker().run_once()
    done = c.services.exports.get(p, view.request_id, "http://egress.test/")
    assert done.status is RequestStatus.FAILED and not done.retryable
    assert done.error == (
        "csvDialect 'postgres' cannot read a SQL_ASCII database (its text is bytes that Egress"
        " decodes itself); use the default csvDialect"
    )
