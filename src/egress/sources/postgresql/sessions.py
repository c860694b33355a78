"""A run's one psycopg session, shared by its calls (describe, estimate, quoting, COPY) and
kept idle in between: a session costs the server a backend and the client a handshake, most
of a tiny run's work (issue 19, the 1,000-execution drain). Lent a worker's ``SessionCache``,
it also outlives the run: the next run of the same connection takes it back, reset, instead
of connecting (issue 17: an export chain's jobs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from egress.sources.session_cache import SessionCache

Connect = Callable[[], psycopg.Connection[Any]]
# Sets a session up, in one round trip with the given statements before its own.
Reset = Callable[[psycopg.Connection[Any], tuple[str, ...]], None]

# What DISCARD ALL is (PostgreSQL's documentation of it), statement by statement: DISCARD ALL
# itself refuses to run beside other statements (they make one implicit transaction), so it
# cost a reused session a round trip of its own before the set-up's (issue 19).
DISCARD_ALL = (
    "CLOSE ALL",
    "SET SESSION AUTHORIZATION DEFAULT",
    "RESET ALL",
    "DEALLOCATE ALL",
    "UNLISTEN *",
    "SELECT pg_advisory_unlock_all()",
    "DISCARD PLANS",
    "DISCARD TEMP",
    "DISCARD SEQUENCES",
)


class IdleSession:
    """The session between calls. Kept only when ``keep`` (a run's source, which the runner
    closes); an interactive call's source is never closed, so its session ends with the
    call."""

    def __init__(self, connect: Connect, keep: bool) -> None:
        self._connect = connect
        self._keep = keep
        self._conn: psycopg.Connection[Any] | None = None
        self._cache: SessionCache | None = None
        self._key = ""
        self._reset: Reset | None = None

    def lend(self, cache: SessionCache, key: str, reset: Reset) -> None:
        """Take sessions from ``cache`` under ``key`` (each reset and set up by ``reset``, which
        raises ``psycopg.Error`` on a broken session) and give the idle one back at
        ``close``."""
        if self._keep:
            self._cache, self._key, self._reset = cache, key, reset

    def take(self) -> psycopg.Connection[Any]:
        """The idle session (or a new one), now the caller's to close."""
        conn, self._conn = self._conn, None
        return conn or self._reused() or self._connect()

    def _reused(self) -> psycopg.Connection[Any] | None:
        """A session a previous run left in the cache, reset; None if there is none or it is
        broken (closed, then: the caller connects)."""
        if self._cache is None or self._reset is None:
            return None
        conn: psycopg.Connection[Any] | None = self._cache.take(self._key)
        if conn is None:
            return None
        try:
            # Like a new session: DISCARD ALL's statements drop the SET parameters, temporary
            # tables, prepared statements, advisory locks and LISTENs a run left, and the set-up
            # follows in the same round trip. Only an idle session is kept (``put``, ``close``):
            # none has a transaction open.
            self._reset(conn, DISCARD_ALL)
        except psycopg.Error:
            conn.close()
            return None
        return conn

    @contextmanager
    def use(self) -> Iterator[psycopg.Connection[Any]]:
        """A session for one call, idle again after it unless the call failed or left a
        transaction open."""
        conn = self.take()
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        self.put(conn)

    def put(self, conn: psycopg.Connection[Any]) -> None:
        """``conn`` (taken) is idle again: kept if it is whole and no transaction is open,
        else closed."""
        idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if self._keep and idle and not conn.closed:
            self._conn = conn
        else:
            conn.close()

    def drop(self) -> None:
        """The run failed: its session is closed at ``close``, never given back."""
        self._cache = None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._cache is not None and conn.info.transaction_status == (
            psycopg.pq.TransactionStatus.IDLE
        ):
            self._cache.give(self._key, conn)
        else:
            conn.close()
