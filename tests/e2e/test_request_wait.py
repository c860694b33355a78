"""The Egress extra ``GET /api/v1/request/{requestId}?wait=<seconds>`` against a real server:
held until the request's status changes (answered then), or until the wait ends (answered
with the unchanged status); bad values are 422 problem JSON."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.conftest import Server
from tests.e2e.helpers import api, problem, workers_paused, workspace_id

API = "/api/v1"


def _export_path(server: Server, tmp_path: Path) -> str:
    db = tmp_path / "firm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        conn.executemany("INSERT INTO items VALUES (?, ?)", [(1, "one"), (2, "two")])
    with api(server) as http:
        body = {"name": "firm", "type": "sqlite", "settings": {"path": str(db)}}
        conn_id = http.post(f"{API}/connections", json=body).json()["id"]
        templates = http.get(f"{API}/templates", params={"connectionId": conn_id}).json()
    items = next(t["id"] for t in templates["data"] if t["name"] == "main.items")
    return f"{API}/idm/{workspace_id(server)}/t-{items}/export"


def test_wait_answers_on_a_change_or_when_it_ends(server: Server, tmp_path: Path) -> None:
    path = _export_path(server, tmp_path)
    with api(server) as http, api(server) as waiter, ThreadPoolExecutor(1) as pool:
        with workers_paused(server):
            rid = http.post(path).json()["requestId"]
            # Nothing changes while the worker is paused: the wait ends, the status as it was.
            held = http.get(f"{API}/request/{rid}", params={"wait": 0.3})
            assert held.status_code == 200 and held.json()["status"] == "Pending"
            # Answered once the job moves on (that it is answered then, not when the wait
            # ends, is tests/unit/test_long_poll.py's: no test here measures a time).
            waiting = pool.submit(
                waiter.get, f"{API}/request/{rid}", params={"wait": 30}, timeout=60
            )
            time.sleep(1)  # the request reaches the server while the job is still Pending
        changed = waiting.result()
        assert changed.status_code == 200, changed.text
        assert changed.json()["status"] in ("InProgress", "Completed"), changed.json()
        # A finished request is answered at once (nothing changes it on its own): a wait of
        # 30 s held would outlast the client's 10 s timeout.
        while http.get(f"{API}/request/{rid}").json()["status"] != "Completed":
            time.sleep(0.05)
        done = http.get(f"{API}/request/{rid}", params={"wait": 30}, timeout=10).json()
        assert done["status"] == "Completed" and done["result"]["total"] == 2


def test_bad_waits_are_422_problems(server: Server) -> None:
    with api(server) as http:
        for bad in ("-1", "30.5", "nan", "inf", "soon"):
            problem(http.get(f"{API}/request/export-nope", params={"wait": bad}), 422, "query.wait")
        problem(http.get(f"{API}/request/export-nope", params={"wait": 1}), 404)
