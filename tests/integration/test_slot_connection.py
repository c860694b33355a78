"""A worker slot keeps one metadata connection from a run's claim to its outcome (issue 19's
drain: no pool checkout per transaction), on PostgreSQL; one that broke is replaced by the
next transaction, and other threads keep using the pool."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

import egress.db.engine
from egress.container import Container
from egress.db.run_queue import RunQueue
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from tests.conftest import PgDatabase, make_settings
from tests.support.factories import submitted_configuration


@pytest.fixture
def meta(pg_factory: Any, pg_migrated: str) -> PgDatabase:
    return pg_factory("egress_slot", pg_migrated)  # type: ignore[no-any-return]


@pytest.fixture
def c(tmp_path: Path, meta: PgDatabase) -> Iterator[Container]:
    container = Container.build(make_settings(tmp_path, meta.sqlalchemy_url))
    yield container
    container.engine.dispose()


def _trigger(c: Container, tmp_path: Path, runs: int) -> tuple[str, list[tuple[str, str]]]:
    """``runs`` tiny runs queued (one configuration each); the workspace and (cfg, execution)."""
    db = tmp_path / "source.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1)")
    ws = c.workspaces.ensure_workspace("t")
    source = c.connections.create(ws, "src", "sqlite", {"path": str(db)}, None)
    c.services.catalog.discover(ws, source.id)
    tpl = c.templates.list_page(ws, source.id, PageRequest(0, 10)).items[0]
    queued = []
    for i in range(runs):
        cfg = submitted_configuration(c, ws, tpl.id, f"tiny{i}")
        execution, _ = c.services.executions.trigger(ws, cfg, {})
        queued.append((cfg, execution.id))
    return ws, queued


def _checkouts_on_this_thread(engine: sa.Engine) -> list[int]:
    count = [0]
    me = threading.current_thread()

    @event.listens_for(engine, "checkout")
    def _counted(*_args: Any) -> None:
        if threading.current_thread() is me:  # not a watchdog's heartbeat
            count[0] += 1

    return count


def test_a_slot_keeps_one_connection_from_claim_to_outcome(c: Container, tmp_path: Path) -> None:
    ws, queued = _trigger(c, tmp_path, 4)
    worker = c.worker()
    checkouts = _checkouts_on_this_thread(c.engine)
    with c.run_queue.kept_connection():  # what a slot loop does around runs back to back
        assert worker.run_once() and worker.run_once() and worker.run_once()
        assert checkouts[0] == 1, "one checkout for three runs' claims, intents and outcomes"
    # A run on its own (no slot loop around it) keeps one from its claim to its outcome.
    assert worker.run_once()
    assert checkouts[0] == 2
    for cfg, eid in queued:
        assert c.executions.get(ws, cfg, eid).latest.status is RunStatus.COMPLETED


def _refused() -> sa.Connection:
    raise sa.exc.OperationalError("connect", None, Exception("connection refused"))


def test_a_kept_connection_that_broke_is_replaced_and_the_next_run_completes(
    c: Container, meta: PgDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Never pinged before use: the break is met by the claim itself, however slow the test.
    monkeypatch.setattr(egress.db.engine, "PING_AFTER_IDLE_S", float("inf"))
    ws, queued = _trigger(c, tmp_path, 2)
    worker = c.worker()
    with c.run_queue.kept_connection():
        assert worker.run_once()
        with meta.connect() as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (meta.name,),
            )
        with pytest.raises(sa.exc.DBAPIError) as lost:
            worker.run_once()
        assert lost.value.connection_invalidated
        # The server still down for the next one: nothing is kept that the one after would use.
        connect = c.engine.connect
        monkeypatch.setattr(c.engine, "connect", _refused)
        with pytest.raises(sa.exc.OperationalError):
            worker.run_once()
        monkeypatch.setattr(c.engine, "connect", connect)
        assert worker.run_once(), "the next run takes a fresh connection"
    for cfg, eid in queued:
        assert c.executions.get(ws, cfg, eid).latest.status is RunStatus.COMPLETED


def test_a_lost_connection_in_a_transaction_leaves_the_next_one_working(
    c: Container, meta: PgDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(egress.db.engine, "PING_AFTER_IDLE_S", float("inf"))
    _trigger(c, tmp_path, 2)
    queue, now, lease = c.run_queue, c.clock(), timedelta(seconds=30)
    with queue.kept_connection():
        claimed = queue.claim("w-0", lease, now)
        assert claimed is not None
        with meta.connect() as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (meta.name,),
            )
        with pytest.raises(sa.exc.DBAPIError):
            queue.release(claimed, now)  # a transaction (lock, delete, update)
        assert queue.release(claimed, now) is RunStatus.PENDING
        assert queue.claim("w-0", lease, now) is not None


def test_each_thread_keeps_its_own_connection(c: Container) -> None:
    pids: dict[str, set[int]] = {}

    @event.listens_for(c.engine, "before_cursor_execute")
    def _seen(conn: sa.Connection, *_args: Any) -> None:
        pid = conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
        pids.setdefault(threading.current_thread().name, set()).add(pid)

    both_keep_one = threading.Barrier(2, timeout=30)

    def claims() -> None:
        with c.run_queue.kept_connection():
            for _ in range(3):
                assert c.run_queue.claim("w", timedelta(seconds=30), c.clock()) is None
                both_keep_one.wait()

    threads = [threading.Thread(target=claims, name=f"slot-{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(pids["slot-0"]) == len(pids["slot-1"]) == 1
    assert pids["slot-0"] != pids["slot-1"]


def test_slots_beyond_half_the_pool_take_the_pools_connections(meta: PgDatabase) -> None:
    engine = sa.create_engine(meta.sqlalchemy_url, pool_size=2)  # room for one kept
    queue, lease = RunQueue(engine), timedelta(seconds=30)
    keeping, done = threading.Event(), threading.Event()

    def keeper() -> None:
        with queue.kept_connection():
            assert queue.claim("w-0", lease, datetime.now(UTC)) is None
            keeping.set()
            done.wait(30)

    other = threading.Thread(target=keeper)
    other.start()
    try:
        assert keeping.wait(30)
        checkouts = _checkouts_on_this_thread(engine)
        with queue.kept_connection():
            for _ in range(3):
                assert queue.claim("w-1", lease, datetime.now(UTC)) is None
        assert checkouts[0] == 3, "no room left: one checkout a transaction, as before"
    finally:
        done.set()
        other.join()
    checkouts[0] = 0
    with queue.kept_connection():  # the keeper's room is free again
        for _ in range(3):
            assert queue.claim("w-1", lease, datetime.now(UTC)) is None
    assert checkouts[0] == 1
    engine.dispose()
