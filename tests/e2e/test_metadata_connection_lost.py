"""The metadata PostgreSQL drops the server's connections (a restart, a failover, an admin's
``pg_terminate_backend``) or is down altogether: a request that needs it answers 503 problem
JSON with ``Retry-After``, never a 500, and requests are served again once it is back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import PgDatabase, Server, start_server, stop_server
from tests.support.tcp_switch import TcpSwitch

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_server(tmp_path: Path, pg_factory: Any, pg_migrated: str) -> Iterator[Server]:
    db: PgDatabase = pg_factory("egress_meta", pg_migrated)
    server = start_server(tmp_path, {"EGRESS_DATABASE_URL": db.sqlalchemy_url})
    yield server
    stop_server(server)


def _terminate_backends(database: str) -> int:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        ended = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(ended)


def test_lost_metadata_connections_answer_503_then_recover(pg_server: Server) -> None:
    database = pg_server.env["EGRESS_DATABASE_URL"].rsplit("/", 1)[1]
    stop = threading.Event()
    seen: list[httpx.Response] = []

    def keep_busy() -> None:
        """Requests back to back: every pooled connection was used within the last second,
        so none is pinged before its next use (db/engine.py)."""
        with pg_server.client() as client:
            while not stop.is_set():
                seen.append(client.get("/api/v1/me"))

    busy = threading.Thread(target=keep_busy)
    busy.start()
    try:
        time.sleep(1.5)
        assert _terminate_backends(database) > 0
        time.sleep(1.5)
    finally:
        stop.set()
        busy.join()

    statuses = [r.status_code for r in seen]
    assert set(statuses) <= {200, 503}, statuses
    lost = [r for r in seen if r.status_code == 503]
    assert lost, "no request ran into a dropped connection"
    for response in lost:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "1"
        assert response.json()["detail"] == "the database connection was lost; try again"
    assert statuses[-1] == 200  # served again on new connections
    assert len(lost) < 10  # the pool replaced its connections; it did not keep failing


def test_metadata_database_down_answers_503_until_it_is_back(
    tmp_path: Path, pg_factory: Any, pg_migrated: str
) -> None:
    db: PgDatabase = pg_factory("egress_meta", pg_migrated)
    switch = TcpSwitch(5432)
    url = db.sqlalchemy_url.replace("127.0.0.1:5432", f"127.0.0.1:{switch.port}")
    server = start_server(tmp_path, {"EGRESS_DATABASE_URL": url})
    try:
        with server.client() as client:
            assert client.get("/api/v1/connections").status_code == 200
            switch.off()  # open connections closed, new ones refused
            down = [client.get("/api/v1/connections") for _ in range(5)]
            for response in down:
                assert response.status_code == 503, response.text
                assert response.headers["content-type"] == "application/problem+json"
                assert response.headers["retry-after"] == "1"
                assert response.json()["detail"] in {
                    "the database connection was lost; try again",
                    "the database is unreachable; try again",
                }
            assert down[-1].json()["detail"] == "the database is unreachable; try again"
            switch.on()
            deadline = time.monotonic() + 10
            while (status := client.get("/api/v1/connections").status_code) != 200:
                assert status == 503 and time.monotonic() < deadline
        log = server.log()
        assert " 500 " not in log
        assert "Traceback" not in log  # the background loops log one line a round, not a trace
    finally:
        switch.off()
        stop_server(server)
