"""Data tables: append and upsert loads into a SQLite or PostgreSQL warehouse; failed loads
leave the table as it was."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from egress.container import Container
from egress.db.migrate import upgrade
from egress.domain.errors import Conflict, Invalid
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from egress.services import catalog, configurations, executions
from tests.conftest import make_settings
from tests.support.factories import submitted_configuration

_n = itertools.count()


@pytest.fixture(params=["sqlite-warehouse", "postgresql-warehouse"])
def c(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    extra: dict[str, Any] = {"batch_rows": 10}
    if request.param == "postgresql-warehouse":
        extra["warehouse_url"] = request.getfixturevalue("pg_factory")("egress_wh").sqlalchemy_url
    settings = make_settings(tmp_path, **extra)
    settings.ensure_data_dir()
    upgrade(settings.resolved_database_url)
    container = Container.build(settings)
    yield container
    container.engine.dispose()
    container.warehouse.engine.dispose()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "src.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price DECIMAL(8,2),"
            " qty INTEGER)"
        )
        db.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?)",
            [(i, f"item {i}", f"{i}.50", i % 7) for i in range(1, 101)],
        )
    return path


def _config(c: Container, source: Path, mode: str, table: str = "items_copy") -> tuple[str, str]:
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, f"src{next(_n)}", "sqlite", {"path": str(source)}, None)
    catalog.discover(c, ws, conn.id)
    tpl = c.templates.list_page(ws, conn.id, PageRequest(0, 10)).items[0]
    cfg_id = submitted_configuration(
        c,
        ws,
        tpl.id,
        f"load_{next(_n)}",
        destination={"type": "dataTable", "dataTable": table, "mode": mode},
    )
    return ws, cfg_id


def _run(c: Container, ws: str, cfg: str, **options: Any) -> Any:
    execution, _ = executions.trigger(c, ws, cfg, options)
    assert c.worker().run_once()
    return c.executions.get(ws, cfg, execution.id)


def _table(c: Container, ws: str, name: str = "items_copy") -> list[tuple[Any, ...]]:
    record = c.data_tables.list_page(ws, PageRequest(0, 10)).items
    physical = next(t.physical_name for t in record if t.name == name)
    with c.warehouse.engine.connect() as conn:
        rows = conn.execute(sa.text(f'SELECT id, name, price, qty FROM "{physical}" ORDER BY id'))
        return [(r[0], r[1], Decimal(str(r[2])), r[3]) for r in rows]


def _source(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, name, price, qty FROM items ORDER BY id").fetchall()
    return [(r[0], r[1], Decimal(str(r[2])).quantize(Decimal("0.01")), r[3]) for r in rows]


def test_upsert_updates_and_inserts_by_key(c: Container, source: Path) -> None:
    ws, cfg = _config(c, source, "upsert")
    first = _run(c, ws, cfg).latest
    assert first.status is RunStatus.COMPLETED and first.record_count == 100
    assert _table(c, ws) == _source(source)
    with sqlite3.connect(source) as db:
        db.execute("UPDATE items SET name = 'renamed ' || id, price = 9.99 WHERE id <= 10")
        db.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?)",
            [(i, f"new {i}", "1.00", 1) for i in range(101, 106)],
        )
    second = _run(c, ws, cfg).latest
    assert second.status is RunStatus.COMPLETED and second.record_count == 105
    assert _table(c, ws) == _source(source)
    record = c.data_tables.list_page(ws, PageRequest(0, 10)).items[0]
    assert (record.name, record.row_count, record.primary_key) == ("items_copy", 105, ["id"])
    # Selected rows through an upsert touch only those keys.
    with sqlite3.connect(source) as db:
        db.execute("UPDATE items SET qty = 99")
    _run(c, ws, cfg, selectAll=False, rows=[{"id": 3}])
    assert [r[3] for r in _table(c, ws)][:4] == [1, 2, 99, 4]


def test_append_adds_every_run(c: Container, source: Path) -> None:
    ws, cfg = _config(c, source, "append", "items_log")
    _run(c, ws, cfg, whereClause="id <= 30")
    _run(c, ws, cfg, whereClause="id <= 30")
    record = c.data_tables.list_page(ws, PageRequest(0, 10)).items[0]
    assert record.row_count == 60 and record.primary_key == []


def test_failed_load_leaves_the_table_untouched(c: Container, source: Path) -> None:
    ws, cfg = _config(c, source, "upsert")
    _run(c, ws, cfg)
    before = _table(c, ws)
    with sqlite3.connect(source) as db:  # a bad value at row 95: nine batches load first
        db.execute("UPDATE items SET name = 'changed', qty = 'not a number' WHERE id = 95")
        db.execute("UPDATE items SET name = 'changed too'")
    failed = _run(c, ws, cfg).latest
    assert failed.status is RunStatus.FAILED
    assert failed.error_message is not None and "qty" in failed.error_message
    assert _table(c, ws) == before


def test_rules(c: Container, source: Path) -> None:
    ws, cfg = _config(c, source, "upsert")
    execution = _run(c, ws, cfg)
    with pytest.raises(Conflict, match="only extractions delivered to storage"):
        executions.run_with_files(execution, None)
    ws = c.workspaces.ensure_workspace("t")
    tpl = c.templates.list_page(ws, None, PageRequest(0, 10)).items[0]
    base = {
        "name": "bad",
        "template_id": tpl.id,
        "fields": None,
        "format": "csv",
        "compression": "none",
        "file_name_pattern": None,
        "start_date": None,
        "end_date": None,
    }
    with pytest.raises(Invalid, match="is only for storage"):
        configurations.create(
            c,
            ws,
            {
                **base,
                "split_by": "name",
                "destination": {"type": "dataTable", "dataTable": "x", "mode": "append"},
            },
        )
