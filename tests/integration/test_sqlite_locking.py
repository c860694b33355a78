"""SQLite metadata: reads never take the write lock, transactions that may write take it up
front, and repositories stamp rows with the injected clock.

The probe is a second connection that asks for the write lock without waiting (timeout 0): it
fails exactly when someone else holds the lock, so nothing here depends on timing."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from egress.db.configurations import ConfigurationRepo
from egress.db.connections import ConnectionRepo
from egress.db.data_tables import DataTableRepo
from egress.db.engine import make_engine, read_only
from egress.db.executions import ExecutionRepo
from egress.db.migrate import upgrade
from egress.db.tables import workspaces
from egress.db.templates import TemplateRepo
from egress.db.workspaces import WorkspaceRepo
from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.paging import PageRequest
from tests.support.factories import BARE_SPEC

T0 = datetime(2026, 5, 28, 14, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "meta.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def engine(db: Path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{db}")
    yield engine
    engine.dispose()


def write_lock_is_free(db: Path) -> bool:
    probe = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        probe.close()


def test_a_transaction_that_may_write_holds_the_lock_from_its_first_read(
    engine: sa.Engine, db: Path
) -> None:
    with engine.begin() as conn:
        conn.execute(sa.select(workspaces)).all()
        assert not write_lock_is_free(db)
    assert write_lock_is_free(db)


def test_a_read_leaves_the_write_lock_free(engine: sa.Engine, db: Path) -> None:
    with read_only(engine).connect() as conn:
        conn.execute(sa.select(workspaces)).all()
        assert write_lock_is_free(db)


def test_repository_reads_go_on_while_a_writer_holds_the_lock(engine: sa.Engine, db: Path) -> None:
    ws_repo = WorkspaceRepo(engine)
    ws = ws_repo.ensure_workspace("a")
    conn = ConnectionRepo(engine).create(ws, "src", "sqlite", {"path": "/x.db"}, None)
    tpl = TemplateRepo(engine).create_custom(
        ws, conn.id, "t", TableRef("main", "t"), [ColumnInfo("id", "int64")], ["id"], None, None
    )
    values = {"name": "cfg", "template_id": tpl.id, "fields": None, "format": "csv"}
    values |= {"compression": "none", "destination": {"type": "storage", "path": ""}}
    cfg = ConfigurationRepo(engine).create(ws, values | {"file_name_pattern": None})
    executions = ExecutionRepo(engine)
    execution, _ = executions.create(ws, cfg.id, BARE_SPEC, "api", T0)

    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a worker's heartbeat, say, in the middle of its write
    writer.execute("UPDATE runs SET processed = 7")
    try:
        # Before: each of these waited for the writer (up to the 30 s busy timeout).
        assert ws_repo.workspace_id("a") == ws
        assert ws_repo.find_token({"nope": None}) is None
        assert ConnectionRepo(engine).get(ws, conn.id).name == "src"
        assert TemplateRepo(engine).get(ws, tpl.id).name == "t"
        assert ConfigurationRepo(engine).get(ws, cfg.id).name == "cfg"
        assert DataTableRepo(engine).list_page(ws, PageRequest()).total == 0
        got = executions.get(ws, cfg.id, execution.id)
        assert got.latest.processed in (None, 0)  # the writer's change is not committed
        assert executions.list_page(ws, cfg.id, PageRequest()).total == 1
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_repositories_stamp_rows_with_the_injected_clock(engine: sa.Engine) -> None:
    ws = WorkspaceRepo(engine, lambda: T0).ensure_workspace("a")
    connections = ConnectionRepo(engine, lambda: T0)
    created = connections.create(ws, "src", "sqlite", {"path": "/x.db"}, None)
    assert (created.created_at, created.updated_at) == (T0, T0)
    later = datetime(2027, 1, 1, tzinfo=UTC)
    updated = ConnectionRepo(engine, lambda: later).update(ws, created.id, name="renamed")
    assert (updated.created_at, updated.updated_at) == (T0, later)
