"""Retries as a client sees them (issue 14 item 6): ``retryable`` beside ``errorMessage`` in
``runs[]``, and ``nextAttemptAt`` while a run waits out its backoff.

A PostgreSQL connection moved to a closed port fails each attempt with "could not connect"
(transient); a SQLite table dropped after the configuration was saved fails at once (terminal).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import PgDatabase, free_port
from tests.e2e.helpers import API, CONFIGS, DONE, api, configuration, running_server, trigger
from tests.support.http import sqlite_template, template


def _details(http: httpx.Client, cfg: str, eid: str) -> dict[str, Any]:
    r = http.get(f"{CONFIGS}/{cfg}/executions/{eid}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _wait(
    http: httpx.Client, cfg: str, eid: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        run = _details(http, cfg, eid)["runs"][-1]
        if done(run):
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.05)


def _unreachable_configuration(http: httpx.Client, db: PgDatabase) -> str:
    """A configuration whose connection worked when it was saved and is unreachable now."""
    with db.connect() as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
        conn.execute("INSERT INTO orders VALUES (1)")
    settings = {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"}
    r = http.post(
        f"{API}/connections", json={"name": "pg", "type": "postgresql", "settings": settings}
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    cfg = configuration(http, template(http, cid, "public.orders")["id"], "unreachable")
    moved = {**settings, "port": free_port()}
    r = http.patch(f"{API}/connections/{cid}", json={"settings": moved})
    assert r.status_code == 200, r.text
    return cfg


def test_a_run_waiting_for_a_retry_shows_when_and_why(tmp_path: Path, pg_db: PgDatabase) -> None:
    env = {"EGRESS_RETRY_BASE_S": "600", "EGRESS_RETRY_MAX_S": "600", "EGRESS_MAX_ATTEMPTS": "3"}
    with running_server(tmp_path, env=env) as server, api(server) as http:
        cfg = _unreachable_configuration(http, pg_db)
        eid = trigger(http, cfg)["id"]
        asked = datetime.now(UTC)
        run = _wait(http, cfg, eid, lambda r: r["attempt"] == 2)
        assert run["status"] == "PENDING"
        assert run["errorMessage"] == "could not connect; attempt 1 of 3"
        assert run["retryable"] is True
        # Equal jitter: attempt 2 waits at least half of EGRESS_RETRY_BASE_S.
        next_at = datetime.fromisoformat(run["nextAttemptAt"])
        assert (next_at - asked).total_seconds() >= 300, run
        listed = http.get(f"{CONFIGS}/{cfg}/executions").json()["data"][0]
        assert listed["latestStatus"] == "PENDING"
        # A run waiting for its retry can be cancelled; it waits for nothing any more.
        assert http.post(f"{CONFIGS}/{cfg}/executions/{eid}/cancel").status_code == 202
        run = _details(http, cfg, eid)["runs"][-1]
        assert (run["status"], run["nextAttemptAt"]) == ("CANCELLED", None), run


def test_transient_until_the_last_attempt_then_failed_retryable_terminal_at_once(
    tmp_path: Path, pg_db: PgDatabase
) -> None:
    env = {"EGRESS_RETRY_BASE_S": "0.2", "EGRESS_MAX_ATTEMPTS": "2"}
    with running_server(tmp_path, env=env) as server, api(server) as http:
        cfg = _unreachable_configuration(http, pg_db)
        eid = trigger(http, cfg)["id"]
        run = _wait(http, cfg, eid, lambda r: r["status"] in DONE)
        assert (run["status"], run["attempt"], run["retryable"]) == ("FAILED", 2, True), run
        assert run["errorMessage"] == "could not connect; attempt 2 of 2"
        assert run["nextAttemptAt"] is None and run["file"] is None

        db = tmp_path / "gone.db"
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE gone (id INTEGER PRIMARY KEY)")
            conn.execute("INSERT INTO gone VALUES (1)")
        doomed = configuration(http, sqlite_template(http, db, "lite", "gone"), "doomed")
        ok = trigger(http, doomed)["id"]
        run = _wait(http, doomed, ok, lambda r: r["status"] in DONE)
        assert (run["status"], run["retryable"], run["errorMessage"]) == ("COMPLETED", None, None)
        with sqlite3.connect(db) as conn:
            conn.execute("DROP TABLE gone")
        eid = trigger(http, doomed)["id"]
        run = _wait(http, doomed, eid, lambda r: r["status"] in DONE)
        assert (run["status"], run["attempt"], run["retryable"]) == ("FAILED", 1, False), run
        assert "gone" in run["errorMessage"]
        assert run["nextAttemptAt"] is None
