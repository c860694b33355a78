"""A metadata PostgreSQL that cannot be reached: the engine gives up after its connect timeout
(not the OS's ~2 minutes of TCP retries), and the error is classed as "unavailable" — what the
API answers 503 for and the background loops log in one line."""

from __future__ import annotations

import logging
import socket
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from egress.container import Container
from egress.db import engine as metadata_engine
from egress.engine.control import RunControl
from tests.conftest import PgDatabase, make_settings
from tests.integration.test_zombie_publish import queued_execution
from tests.support.tcp_switch import TcpSwitch


def test_an_unanswering_server_times_out_and_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A listener that never accepts: the TCP handshake completes in the kernel's backlog, and
    # the server's first message never comes, as with a hung host behind a load balancer.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        monkeypatch.setattr(metadata_engine, "CONNECT_TIMEOUT_S", 2)
        engine = metadata_engine.make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/x")
        with pytest.raises(sa.exc.OperationalError) as caught:
            engine.connect()
        engine.dispose()
    assert "timeout" in str(caught.value.orig).lower()
    assert metadata_engine.unavailable(caught.value) == "the database is unreachable; try again"


def test_a_refused_connection_is_unavailable_and_a_bad_statement_is_not() -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    engine = metadata_engine.make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/x")
    with pytest.raises(sa.exc.OperationalError) as refused:
        engine.connect()
    assert metadata_engine.unavailable(refused.value) == "the database is unreachable; try again"

    live = metadata_engine.make_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    with live.connect() as conn, pytest.raises(sa.exc.DBAPIError) as wrong:
        conn.execute(sa.text("SELECT no_such_column FROM pg_class"))
    live.dispose()
    assert metadata_engine.unavailable(wrong.value) is None


def test_a_connection_lost_before_the_commit_notify_is_invalidated_and_unavailable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The commit's NOTIFY (db/changes.announce_commits) goes out on the DBAPI connection, past
    # SQLAlchemy's error handling: a loss there must still invalidate the connection (not return
    # it to the pool, whose reset would log a traceback) and read as "unavailable".
    switch = TcpSwitch(5432)
    engine = metadata_engine.make_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{switch.port}/postgres"
    )
    try:
        with pytest.raises(sa.exc.OperationalError) as lost, engine.begin() as conn:
            conn.execute(sa.text("SELECT 1"))
            switch.off()  # after the statement, before the commit's NOTIFY
        assert lost.value.connection_invalidated
        assert (
            metadata_engine.unavailable(lost.value) == "the database connection was lost; try again"
        )
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        switch.on()
        with engine.connect() as conn:  # a fresh connection, not the dead one from the pool
            assert conn.execute(sa.text("SELECT 2")).scalar_one() == 2
    finally:
        engine.dispose()
        switch.off()


def test_a_sqlite_write_lock_held_past_the_busy_timeout_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Another process holding SQLite's one write lock longer than the busy timeout: the
    # request's transaction never began, so the client may send it again (503, not 500).
    monkeypatch.setattr(metadata_engine, "SQLITE_BUSY_TIMEOUT_MS", 100)
    path = tmp_path / "meta.db"
    engine = metadata_engine.make_engine(f"sqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sa.exc.OperationalError) as busy, engine.begin() as conn:
            conn.execute(sa.text("SELECT 1"))
        assert "database is locked" in str(busy.value.orig)
        assert metadata_engine.unavailable(busy.value) == "the database is busy; try again"
        holder.execute("ROLLBACK")
        with engine.begin() as conn:  # the lock free again: the same request goes through
            assert conn.execute(sa.text("SELECT 2")).scalar_one() == 2
    finally:
        holder.close()
        engine.dispose()


def test_a_heartbeat_while_the_metadata_database_is_down_logs_one_line(
    tmp_path: Path, pg_factory: Any, pg_migrated: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A run's watchdog beats every few seconds: a traceback each time buried the log for as
    # long as the database was down.
    db: PgDatabase = pg_factory("egress_meta", pg_migrated)
    switch = TcpSwitch(5432)
    url = db.sqlalchemy_url.replace("127.0.0.1:5432", f"127.0.0.1:{switch.port}")
    c = Container.build(make_settings(tmp_path, url))
    try:
        queued_execution(c, tmp_path)
        claimed = c.run_queue.claim("w1", timedelta(seconds=c.settings.lease_s), c.clock())
        assert claimed is not None
        switch.off()
        caplog.clear()
        control = RunControl()
        assert c.worker()._beat(claimed, control)  # the watch goes on; the next beat retries
        assert control.reason() is None  # not stopped: the lease is not known to be lost
        beats = [r for r in caplog.records if "heartbeat" in r.getMessage()]
        assert [(r.levelno, r.exc_info) for r in beats] == [(logging.WARNING, None)]
        lead = f"heartbeat of run {claimed.run_id}: the database "
        assert (
            beats[0]
            .getMessage()
            .startswith(
                (f"{lead}is unreachable; try again (", f"{lead}connection was lost; try again (")
            )
        )
    finally:
        switch.off()
        c.engine.dispose()
        c.warehouse.engine.dispose()
