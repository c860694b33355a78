"""The Egress extra ``GET …/executions/{id}?wait=<seconds>`` against a real server: held until
the latest run's status changes (answered then), or until the wait ends (answered with the
unchanged details); bad values are 422 problem JSON. ``until_changed`` itself (answered on the
change, not at the wait's end) is tests/unit/test_long_poll.py's: no test here measures a time."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import Server, start_server, stop_server
from tests.e2e.helpers import api, problem, workers_paused

API = "/api/v1"


def _configuration(server: Server, tmp_path: Path) -> str:
    name = f"wait-{uuid.uuid4().hex[:8]}"  # the server is shared: names are unique
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        conn.executemany("INSERT INTO items VALUES (?, ?)", [(1, "one"), (2, "two")])
    with api(server) as http:
        body = {"name": name, "type": "sqlite", "settings": {"path": str(db)}}
        conn_id = http.post(f"{API}/connections", json=body).json()["id"]
        templates = http.get(f"{API}/templates", params={"connectionId": conn_id}).json()
        template = next(t["id"] for t in templates["data"] if t["name"] == "main.items")
        cfg = http.post(
            f"{API}/extraction-configurations",
            json={
                "name": name,
                "templateId": template,
                "format": "csv",
                "destination": {"type": "storage", "path": name},
            },
        ).json()["id"]
        submitted = http.post(f"{API}/extraction-configurations/{cfg}/submit")
        assert submitted.status_code == 200, submitted.text
    return f"{API}/extraction-configurations/{cfg}/executions"


@pytest.fixture(params=["cache off", "cache on"])
def waited_on(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server as the tests run it (the revocation cache off, every poll routed) and one as
    deployed (the cache on: a remembered caller's plain poll is answered ahead of the routing,
    ``api/native/poll.py``, which must leave a ``?wait=`` to the route)."""
    env = {"EGRESS_REVOCATION_CACHE_S": "60"} if request.param == "cache on" else None
    s = start_server(tmp_path, env)
    yield s
    stop_server(s)


def test_wait_answers_on_a_change_or_when_it_ends(waited_on: Server, tmp_path: Path) -> None:
    server = waited_on
    executions = _configuration(server, tmp_path)
    with api(server) as http, api(server) as waiter, ThreadPoolExecutor(1) as pool:
        with workers_paused(server):
            path = f"{executions}/{http.post(executions).json()['id']}"
            # Nothing changes while the worker is paused: the wait ends, the status as it was.
            held = http.get(path, params={"wait": 0.3})
            assert held.status_code == 200 and held.json()["latestStatus"] == "PENDING"
            waiting = pool.submit(waiter.get, path, params={"wait": 30}, timeout=60)
            time.sleep(1)  # the request reaches the server while the run is still PENDING
        changed = waiting.result()
        assert changed.status_code == 200, changed.text
        assert changed.json()["latestStatus"] in ("IN_PROGRESS", "COMPLETED"), changed.json()
        while http.get(path).json()["latestStatus"] != "COMPLETED":
            time.sleep(0.05)
        # A finished run is answered at once (nothing changes it on its own): a wait of 30 s
        # held would outlast the client's 10 s timeout.
        done = http.get(path, params={"wait": 30}, timeout=10).json()
        assert done["latestStatus"] == "COMPLETED" and done["latestRecordCount"] == 2


def test_bad_waits_are_422_problems(server: Server, tmp_path: Path) -> None:
    executions = _configuration(server, tmp_path)
    with api(server) as http:
        for bad in ("-1", "30.5", "nan", "inf", "soon"):
            problem(http.get(f"{executions}/nope", params={"wait": bad}), 422, "query.wait")
        problem(http.get(f"{executions}/nope", params={"wait": 1}), 404)
