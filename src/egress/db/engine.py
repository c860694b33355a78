"""Engine construction for the metadata database (SQLite in embedded mode, or PostgreSQL)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from egress.db.changes import announce_commits
from egress.domain.clock import Clock, utcnow

# A writer waits this long for SQLite's single write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option marking an engine whose transactions only read (see ``read_only``).
READ_ONLY = "egress_read_only"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    engine = sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    announce_commits(engine)  # what keeps other processes' read caches current
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A read is a deferred transaction: a WAL snapshot that neither waits for nor holds the
        # write lock, so polling never queues behind a heartbeat. Anything else may write and
        # takes the lock up front (IMMEDIATE): a transaction that reads and then writes can
        # then never fail its lock upgrade ("database is locked") against another writer.
        read = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


def read_only(engine: Engine) -> Engine:
    """``engine`` (same pool, same events) for transactions that only read; never write
    through it: on SQLite its transactions do not take the write lock.

    On PostgreSQL its connections run in autocommit: under READ COMMITTED every statement
    reads its own snapshot inside a transaction too, so a read sees the same rows without the
    ``BEGIN`` before it and the ``ROLLBACK`` at check-in — two round trips saved on each read,
    e.g. the token check and the query of every status poll."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT", **{READ_ONLY: True})
    return engine.execution_options(**{READ_ONLY: True})


class Repository:
    """What every metadata repository holds: the engine for transactions that may write
    (``self._engine.begin()``), a read-only view of it for those that only read
    (``self._reads.connect()``), and the clock that stamps what it writes."""

    def __init__(self, engine: Engine, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._reads = read_only(engine)
        self._clock = clock
