"""Accounts of a connection (seed 001): schemas on PostgreSQL, databases on MySQL, folders of a
files connection; an extract reads one, the one its template's table is in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress.container import Container
from egress.domain.errors import Invalid
from egress.domain.paging import PageRequest
from tests.conftest import MysqlDatabase, PgDatabase
from tests.support.factories import sqlite_container


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    with sqlite_container(tmp_path) as container:
        yield container


def _connection(c: Container, kind: str, settings: dict[str, Any]) -> tuple[str, str]:
    ws = c.workspaces.ensure_workspace("t")
    return ws, c.connections.create(ws, "src", kind, settings, None).id


def _template(c: Container, ws: str, conn: str, name: str) -> Any:
    c.services.catalog.discover(ws, conn)
    listed = c.templates.list_page(ws, conn, PageRequest(0, 100)).items
    return next(t for t in listed if t.name == name)


def test_postgresql_accounts_are_schemas(c: Container, pg_db: PgDatabase) -> None:
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE public.orders (id INT PRIMARY KEY)")
        conn.execute("CREATE SCHEMA sales")
        conn.execute("CREATE TABLE sales.invoices (id INT PRIMARY KEY)")
    settings = {"host": "127.0.0.1", "port": 5432, "database": pg_db.name, "user": "postgres"}
    ws, conn_id = _connection(c, "postgresql", settings)
    catalog = c.services.catalog
    assert catalog.accounts(ws, conn_id) == ["public", "sales"]
    invoices = _template(c, ws, conn_id, "sales.invoices")
    assert catalog.account_check(ws, invoices, None) == "sales"
    assert catalog.account_check(ws, invoices, ["sales"]) == "sales"
    with pytest.raises(Invalid) as caught:
        catalog.account_check(ws, invoices, ["public"])
    assert caught.value.errors[0].loc == ("body", "accounts", 0)
    assert f"template {invoices.id} reads account 'sales', not 'public'" in caught.value.detail
    with pytest.raises(Invalid, match="an extract reads one account; 2 were given"):
        catalog.account_check(ws, invoices, ["sales", "public"])


def test_mysql_accounts_are_databases(c: Container, mysql_db: MysqlDatabase) -> None:
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE items (id INT PRIMARY KEY)")
    ws, conn_id = _connection(c, "mysql", dict(mysql_db.settings))
    assert c.services.catalog.accounts(ws, conn_id) == [mysql_db.name]
    items = _template(c, ws, conn_id, f"{mysql_db.name}.items")
    assert c.services.catalog.account_check(ws, items, [mysql_db.name]) == mysql_db.name


def test_files_accounts_are_folders(c: Container, tmp_path: Path) -> None:
    root = tmp_path / "landing"
    (root / "sales").mkdir(parents=True)
    (root / "hr").mkdir()
    (root / "sales" / "2026-01.csv").write_text("id,total\n1,5\n")
    (root / "hr" / "people.csv").write_text("id,name\n1,a\n")
    (root / "top.csv").write_text("id\n1\n")
    ws, conn_id = _connection(c, "files", {"url": root.as_uri()})
    catalog = c.services.catalog
    assert catalog.accounts(ws, conn_id) == [".", "hr", "sales"]
    january = _template(c, ws, conn_id, "sales/2026-01.csv")
    assert catalog.account_check(ws, january, ["sales"]) == "sales"
    top = _template(c, ws, conn_id, "top.csv")
    assert catalog.account_check(ws, top, None) == "."
    with pytest.raises(Invalid, match="'finance' is not an account of connection"):
        catalog.account_check(ws, top, ["finance"])
