"""csvDialect "postgres" on export jobs where it cannot apply (the HTTP face's cases are
``tests/e2e/test_export_csv_dialect.py``): a data table whose warehouse is not PostgreSQL is
refused naming the field, and a SQL_ASCII source fails the job saying why, as an extraction's
run does."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from egress.container import Container
from egress.domain.errors import Invalid
from egress.domain.export import RequestStatus
from egress.domain.identity import Principal, Subject
from egress.domain.paging import PageRequest
from tests.conftest import make_settings
from tests.support.factories import submitted_configuration
from tests.support.migrated import migrate


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    settings = make_settings(tmp_path)  # SQLite metadata, SQLite warehouse
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings)
    yield container
    container.engine.dispose()


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
