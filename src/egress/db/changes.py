"""Whether the metadata database changed: the version that keeps read caches honest.

``MetadataVersion.current()`` returns a value that differs from every earlier one once any
write to the metadata database has committed (None: unknown, so nothing may be cached). A
cache stores what it read with the version taken *before* the read and serves it only while
the version is the same, so it never serves a read older than a write it could have seen:

- SQLite: ``PRAGMA data_version`` on a connection of its own that never writes. SQLite moves
  it on every commit by any other connection, this process's or another's, so a write is seen
  by the very next check.
- PostgreSQL: every commit that wrote, through an Egress engine (``announce_commits``, installed by
  ``make_engine``) also sends ``NOTIFY egress_metadata`` in its transaction; a listening
  thread moves the version when one arrives (another process's write: within the delivery
  time, milliseconds), and this process moves it itself as soon as the committing
  connection is back in the pool, before the request that wrote answers (read-your-writes
  without waiting for the notification). While the listener is not connected the version is
  None.

A write that bypasses Egress's engines (``psql`` by hand) is only seen by SQLite's check;
caches also bound the age of what they serve (``execution_cache``'s ``MAX_AGE_S``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url

log = logging.getLogger(__name__)

CHANNEL = "egress_metadata"
_COMMITTED = "egress_committed"  # pool record flag: a commit went through this connection
_ANNOUNCED = "egress_announced"  # pool record flag: this transaction's NOTIFY is already sent
LISTEN_TIMEOUT_S = 1.0  # how long the listener blocks before checking whether to stop
RECONNECT_DELAY_S = 2.0
_NOTIFY_IF_WROTE = "SELECT pg_notify(%s, '') WHERE txid_current_if_assigned() IS NOT NULL"


def libpq_url(sqlalchemy_url: str) -> str:
    """``sqlalchemy_url`` as psycopg connects to it (for a LISTEN connection of its own)."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def announce_commits(engine: Engine) -> None:
    """Send ``NOTIFY egress_metadata`` inside every transaction ``engine`` commits that wrote
    (PostgreSQL delivers it when, and only if, the commit succeeds)."""

    @event.listens_for(engine, "commit")
    def _on_commit(conn: Any) -> None:
        if conn.info.pop(_ANNOUNCED, False):  # sent with a write (``announcement``)
            conn.connection.info[_COMMITTED] = True
            return
        if conn.connection.dbapi_connection.autocommit:
            # Each statement committed on its own (``db.engine.one_statement``); one that
            # wrote announced itself, and a NOTIFY now would go out in a transaction of its own.
            return
        # Only a transaction that wrote has a transaction id: the worker's empty claims and
        # the transactions that only read leave every cache as it is.
        try:
            wrote = conn.connection.dbapi_connection.execute(
                _NOTIFY_IF_WROTE, (CHANNEL,)
            ).fetchall()
        except psycopg.OperationalError as exc:
            # Sent on the DBAPI connection, so SQLAlchemy never sees the loss: left valid, the
            # dead connection would go back to the pool (its reset then logs a traceback) and
            # the raw error would not read as "unavailable" to the API and the worker loops.
            conn.invalidate(exc)
            raise sa.exc.OperationalError(
                _NOTIFY_IF_WROTE, (CHANNEL,), exc, connection_invalidated=True
            ) from exc
        if wrote:
            conn.connection.info[_COMMITTED] = True

    @event.listens_for(engine, "rollback")
    @event.listens_for(engine, "rollback_savepoint")
    def _on_rollback(conn: Any, *_savepoint: Any) -> None:
        # A lost connection's info cannot be read (SQLAlchemy raises PendingRollbackError,
        # hiding the loss); its record is let go and the check-in clears the flag anyway.
        if not conn.invalidated:
            conn.info.pop(_ANNOUNCED, None)  # the NOTIFY went with what was rolled back

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi: Any, record: Any) -> None:
        record.info.pop(_ANNOUNCED, None)  # whatever ended the transaction, the flag ends too


# ``announce_commits``'s NOTIFY as a column of a PostgreSQL statement that writes.
ANNOUNCEMENT = sa.func.pg_notify(CHANNEL, "").label("announced")


def announcement(conn: Connection) -> list[sa.ColumnElement[Any]]:
    """``announce_commits``'s NOTIFY as a column of a statement that writes (PostgreSQL;
    nothing elsewhere): when the statement changed a row, ``announced`` spares the commit the
    round trip of its own NOTIFY (one of each of a worker's claim, publishing and finish)."""
    if conn.dialect.name != "postgresql":
        return []
    return [ANNOUNCEMENT]


def announced(conn: Connection) -> None:
    """A statement with ``announcement`` returned a row: its NOTIFY is sent."""
    if conn.dialect.name == "postgresql":
        conn.info[_ANNOUNCED] = True


def listen(
    url: str,
    channel: str,
    stopping: threading.Event,
    heard: Callable[[bool], None],
    lost: Callable[[], None] = lambda: None,
) -> None:
    """LISTEN on ``channel`` on a connection of its own until ``stopping``, reconnecting when
    it is lost: ``heard(True)`` once listening (what was sent before went unheard),
    ``heard(False)`` on each notification, ``lost()`` whenever the connection ends."""
    while not stopping.is_set():
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"LISTEN {channel}")
                heard(True)
                while not stopping.is_set():
                    for _ in conn.notifies(timeout=LISTEN_TIMEOUT_S, stop_after=1):
                        heard(False)
        except psycopg.Error as exc:
            log.warning("LISTEN %s: connection lost (%s); reconnecting", channel, exc)
            stopping.wait(RECONNECT_DELAY_S)
        finally:
            lost()


class MetadataVersion:
    """The metadata database's change version for this process (see the module)."""

    def current(self) -> object | None:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the check holds (idempotent)."""


class SqliteVersion(MetadataVersion):
    def __init__(self, path: str) -> None:
        # Used from the event loop and from threads: one check at a time.
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()

    def current(self) -> object | None:
        with self._lock:
            row = self._conn.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def close(self) -> None:
        self._conn.close()


class PgVersion(MetadataVersion):
    def __init__(self, engine: Engine) -> None:
        self._url = libpq_url(engine.url.render_as_string(hide_password=False))
        self._generation = 0
        self._listening = False
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        event.listen(engine, "checkin", self._on_checkin)
        self._engine = engine
        self._thread = threading.Thread(target=self._run, name="metadata-listen", daemon=True)
        self._thread.start()

    def current(self) -> object | None:
        return self._generation if self._listening else None

    def close(self) -> None:
        if event.contains(self._engine, "checkin", self._on_checkin):
            event.remove(self._engine, "checkin", self._on_checkin)
        self._stopping.set()
        self._thread.join(LISTEN_TIMEOUT_S * 3)

    def _moved(self) -> None:
        with self._lock:
            self._generation += 1

    def _on_checkin(self, _dbapi: Any, record: Any) -> None:
        if record.info.pop(_COMMITTED, False):
            self._moved()

    def _run(self) -> None:
        listen(self._url, CHANNEL, self._stopping, self._heard, self._lost)

    def _heard(self, _connected: bool) -> None:
        # A notification, or a new connection: what was committed before its LISTEN went unheard.
        self._moved()
        self._listening = True

    def _lost(self) -> None:
        self._listening = False
        self._moved()


def metadata_version(engine: Engine) -> MetadataVersion | None:
    """The version check for ``engine``'s database (None: an in-memory SQLite database)."""
    if engine.dialect.name == "postgresql":
        return PgVersion(engine)
    path = engine.url.database
    if not path or path == ":memory:" or engine.dialect.name != "sqlite":
        return None
    return SqliteVersion(path)
