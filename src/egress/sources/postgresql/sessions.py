"""A run's one psycopg session, shared by its calls (describe, estimate, quoting, COPY) and
kept idle in between: a session costs the server a backend and the client a handshake, most
of a tiny run's work (issue 19, the 1,000-execution drain)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

Connect = Callable[[], psycopg.Connection[Any]]


class IdleSession:
    """The session between calls. Kept only when ``keep`` (a run's source, which the runner
    closes); an interactive call's source is never closed, so its session ends with the
    call."""

    def __init__(self, connect: Connect, keep: bool) -> None:
        self._connect = connect
        self._keep = keep
        self._conn: psycopg.Connection[Any] | None = None

    def take(self) -> psycopg.Connection[Any]:
        """The idle session (or a new one), now the caller's to close."""
        conn, self._conn = self._conn, None
        return conn or self._connect()

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
        idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if self._keep and idle and not conn.closed:
            self._conn = conn
        else:
            conn.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
