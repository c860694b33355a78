"""How a PostgreSQL source's open calls are stopped (``OpenCalls.interrupt``): a psycopg
session by a server-side cancel and its socket shut down, an ADBC cursor by its own cancel."""

from __future__ import annotations

from typing import Any

import adbc_driver_postgresql.dbapi as adbc_pg
import psycopg

from egress.sources import base
from egress.sources.base import OpenCalls, SocketRef


def track_psycopg(calls: OpenCalls, conn: psycopg.Connection[Any], timeout_s: float) -> None:
    def stop() -> None:
        # The server stops the query (a lock wait, a sleep) on a connection of its own, in
        # the background since the server itself may hang; shutting our socket down makes
        # the blocked read return now even then.
        base.in_background(lambda: conn.cancel_safe(timeout=timeout_s))
        ref.shutdown()

    try:
        ref = SocketRef.of(conn.fileno())
        calls.track(stop)
    except BaseException:
        conn.close()
        raise


def track_adbc(calls: OpenCalls, cur: adbc_pg.Cursor) -> None:
    # ADBC gives no socket; its cancel asks the server over a connection of its own and
    # blocks meanwhile, so it runs in the background (thread-safe by the ADBC spec).
    calls.track(lambda: base.in_background(cur.adbc_cancel))
