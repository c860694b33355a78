"""A worker slot's metadata connection, kept from a run's claim to its finish (issue 19).

A tiny run makes three or four metadata transactions (claim, publishing intent, finish); a
pool checkout and check-in around each cost ~0.25 ms of CPU (checkout, reset, events), a
sizeable part of the ~8 ms a run costs the drain. While a thread is inside ``kept()``, its
transactions share one connection instead, taken from the pool at the first and given back
when the block ends. Only the thread that keeps it uses it (a Connection is not
thread-safe): a run's watchdog, heartbeats and the reaper take theirs from the pool, and so do
the slots beyond half the pool's size (five of ``make_engine``'s ten).

What a checkout and check-in did stays done for each transaction: the connection is pinged
first when it sat idle (``ping_if_idle``: a server restarted meanwhile means a fresh one),
and the pool's check-in events run after it (the idle stamp, the commit's read-cache version:
``changes.PgVersion``). One that broke is dropped; the next transaction takes a fresh one.
PostgreSQL only: on SQLite (the embedded default) every transaction takes the pool's, as
before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from egress.db.engine import one_statement, ping_if_idle


class SlotConnection:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._one = one_statement(engine)
        # Kept connections leave half the pool's steady size to everything else (heartbeats,
        # the reaper, the API beside an embedded worker): in a worker of more slots than that
        # (up to 64), the other slots take the pool's per transaction, as before. None kept on
        # SQLite.
        pool, keeps = engine.pool, engine.dialect.name == "postgresql"
        room = pool.size() // 2 if keeps and isinstance(pool, sa.QueuePool) else 0
        self._room = threading.BoundedSemaphore(room)
        self._local = threading.local()

    @contextmanager
    def kept(self) -> Iterator[None]:
        """Within the block, this thread's transactions (``begin``) share one connection
        while the pool has room for it; a block inside another shares the outer one's."""
        depth: int = getattr(self._local, "depth", 0)
        if depth == 0:
            self._local.keeping = self._room.acquire(blocking=False)
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0 and self._local.keeping:
                self._local.keeping = False
                conn: Connection | None = getattr(self._local, "conn", None)
                self._local.conn = None
                if conn is not None:
                    conn.close()
                self._room.release()

    @contextmanager
    def begin(self, autocommit: bool = False) -> Iterator[Connection]:
        """A transaction; ``autocommit``: of one statement that writes, which commits on its
        own on PostgreSQL (``one_statement``). On the kept connection while there is one."""
        if not getattr(self._local, "keeping", False):
            with (self._one if autocommit else self._engine).begin() as conn:
                yield conn
            return
        conn = self._connection()
        pooled = conn.connection
        dbapi: Any = pooled.dbapi_connection
        # psycopg switches autocommit on an idle connection without a round trip; the pool's
        # own connections are lent without it, so it is switched back after.
        dbapi.autocommit = autocommit
        try:
            with conn.begin():
                yield conn
        finally:
            if not conn.invalidated:
                dbapi.autocommit = False
                # What the check-in's listeners do after a transaction (engine.py's idle stamp,
                # changes.py's version move) is done after each one of the kept connection's.
                self._engine.pool.dispatch.checkin(dbapi, pooled._connection_record)

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            if not conn.invalidated:
                try:
                    pooled = conn.connection
                    ping_if_idle(self._engine, pooled.dbapi_connection, pooled.info)
                    return conn
                except sa.exc.DisconnectionError:
                    conn.invalidate()
            self._local.conn = None  # not kept if the next connect fails
            conn.close()
        self._local.conn = conn = self._engine.connect()
        return conn
