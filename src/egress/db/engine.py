"""Engine construction for the metadata database (SQLite in embedded mode, or PostgreSQL)."""

from __future__ import annotations

import json
import sqlite3
import time
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
# A PostgreSQL connection back in the pool for less than this is used without a ping first.
PING_AFTER_IDLE_S = 1.0
# A metadata PostgreSQL that does not answer a connection attempt (a host down without a
# refusal) fails the request after this long, not after the OS's TCP timeout (~2 minutes).
CONNECT_TIMEOUT_S = 10
_IDLE_SINCE = "egress_idle_since"  # pool record: when the connection was last checked in


def strict_json(value: Any) -> str:
    """JSON columns are written as strict JSON: Python's default writes NaN and Infinity as
    bare words, which SQLite's JSON functions refuse (``malformed JSON``) — a trigger's
    options holding one made the run queue's claim fail for every workspace. A value that
    cannot be written fails where it is written, not where it is read."""
    return json.dumps(value, allow_nan=False)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            json_serializer=strict_json,
        )
        _configure_sqlite(engine)
        return engine
    connect_args = {} if "connect_timeout" in url else {"connect_timeout": CONNECT_TIMEOUT_S}
    engine = sa.create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        connect_args=connect_args,
        json_serializer=strict_json,
    )
    _ping_after_idle(engine)
    announce_commits(engine)  # what keeps other processes' read caches current
    return engine


def _ping_after_idle(engine: Engine) -> None:
    """Ping a connection before its use only when it sat idle for ``PING_AFTER_IDLE_S`` or
    more (a server restarted meanwhile: the pool replaces it). A ping on every checkout was a
    round trip before each transaction, five of a tiny run's; a connection busy a moment ago
    was alive then."""

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _idle(_dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        ping_if_idle(engine, dbapi_conn, record.info)  # a DisconnectionError: the pool reconnects


def ping_if_idle(engine: Engine, dbapi_conn: Any, info: dict[Any, Any]) -> None:
    """Ping ``dbapi_conn`` (its pool record's ``info``) if it sat idle for
    ``PING_AFTER_IDLE_S`` or more; raises ``DisconnectionError`` when it is dead."""
    since = info.get(_IDLE_SINCE)
    if since is not None and time.monotonic() - since < PING_AFTER_IDLE_S:
        return
    try:
        engine.dialect.do_ping(dbapi_conn)
    except engine.dialect.loaded_dbapi.Error as exc:
        if engine.dialect.is_disconnect(exc, dbapi_conn, None):
            raise sa.exc.DisconnectionError(str(exc)) from exc
        raise


def unavailable(exc: BaseException) -> str | None:
    """What a client may be told when ``exc`` means the database could not be used, not that
    a statement was wrong: nothing was done, and the same request can be sent again."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    if exc.connection_invalidated:
        return "the database connection was lost; try again"
    if getattr(exc.orig, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY:
        # SQLite's one write lock not had within the busy timeout: the transaction was
        # rolled back, nothing was written.
        return "the database is busy; try again"
    if isinstance(exc, sa.exc.OperationalError) and exc.statement is None:
        return "the database is unreachable; try again"  # raised while connecting
    return None


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
    return snapshot_reads(engine)


def snapshot_reads(engine: Engine) -> Engine:
    """``engine`` for transactions that only read, each in one snapshot: on SQLite a deferred
    ``BEGIN`` (a WAL snapshot that neither waits for nor takes the write lock, which a data
    table's load holds for its whole source read); on PostgreSQL an ordinary transaction, which
    a server-side cursor needs (``read_only``'s autocommit has none)."""
    return engine.execution_options(**{READ_ONLY: True})


def one_statement(engine: Engine) -> Engine:
    """``engine`` (same pool, same events) for writes made of one statement each. On
    PostgreSQL its connections run in autocommit: the statement is its own transaction, without
    the ``BEGIN`` and ``COMMIT`` round trips around it (two of a claim's three). A statement
    that writes through it announces its commit itself (``changes.announcement``): nothing is
    sent after it. On SQLite, the engine itself (a write takes the lock up front)."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


class Repository:
    """What every metadata repository holds: the engine for transactions that may write
    (``self._engine.begin()``), a read-only view of it for those that only read
    (``self._reads.connect()``), and the clock that stamps what it writes."""

    def __init__(self, engine: Engine, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._reads = read_only(engine)
        self._clock = clock
