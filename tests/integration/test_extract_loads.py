"""An extract's loads add the system columns on both warehouses (SQLite and PostgreSQL), with
the run's load time; filters compiled from conditions select the rows; a native trigger of the
same configuration adds them too (a property of the configuration)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from egress.container import Container
from egress.domain.paging import PageRequest
from egress.services.extracts import NewExtract
from tests.conftest import make_settings
from tests.support.migrated import migrate

LOADED_AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def c(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    extra = {}
    if request.param == "postgresql":
        extra["warehouse_url"] = request.getfixturevalue("pg_db").sqlalchemy_url
    settings = make_settings(tmp_path, **extra)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings, clock=lambda: LOADED_AT)
    yield container
    container.engine.dispose()


def test_loads_add_the_system_columns(c: Container, tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, kind TEXT)")
        conn.executemany("INSERT INTO items VALUES (?, ?)", [(1, "a"), (2, "b"), (3, "a")])
    ws = c.workspaces.ensure_workspace("t")
    conn_id = c.connections.create(ws, "src", "sqlite", {"path": str(db)}, None).id
    c.services.catalog.discover(ws, conn_id)
    tpl = c.templates.list_page(ws, conn_id, PageRequest()).items[0]
    extract = c.services.extracts.create(
        ws,
        NewExtract(
            title="Items A",
            template_id=tpl.id,
            accounts=None,
            fields=None,
            conditions=[{"field": "kind", "operator": "=", "value": "a"}],
            additional_params=None,
        ),
    )
    cfg = extract.configuration
    assert (cfg.account, cfg.filter, cfg.destination["mode"]) == (
        "main",
        "\"kind\" = 'a'",
        "upsert",
    )
    c.services.extracts.run(ws, cfg.id, None, None)
    assert c.worker().run_once()
    c.services.executions.trigger(ws, cfg.id, {})  # the native trigger of the same configuration
    assert c.worker().run_once()
    done = c.services.extracts.get(ws, cfg.id)
    assert (done.status, done.configuration.sync.last_sync) == ("active", LOADED_AT)
    assert done.data_table_id is not None
    rows = c.services.data_tables.rows_page(ws, done.data_table_id, 10, None).rows
    assert rows == [
        {
            "id": 1,
            "kind": "a",
            "account_id": "main",
            "account_name": "main",
            "__insert_date": rows[0]["__insert_date"],
        },
        {
            "id": 3,
            "kind": "a",
            "account_id": "main",
            "account_name": "main",
            "__insert_date": rows[1]["__insert_date"],
        },
    ]
    for row in rows:  # SQLite's warehouse keeps timestamps without their zone
        assert row["__insert_date"].replace(tzinfo=UTC) == LOADED_AT
    table = c.services.data_tables.get(ws, done.data_table_id).table
    assert [(f.name, f.type) for f in table.fields][-3:] == [
        ("account_id", "string"),
        ("account_name", "string"),
        ("__insert_date", "timestamptz"),
    ]
