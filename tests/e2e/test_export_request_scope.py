"""Seed 003's requests are each user's own ("1 active job per user"), as ``GET /requests``
lists them: another user of the same workspace, an admin too, cannot read, cancel or poll
one through the noCo face; its id answers as an unknown request's does. A file link is issued
to whom reads it: the download's audit entry names them."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Server
from tests.e2e.helpers import anonymous, api, problem, workers_paused, workspace_id
from tests.support.identity import create_token, egress_admin

API = "/api/v1"


def _poll(http: httpx.Client, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body: dict[str, Any] = http.get(f"{API}/request/{request_id}").json()
        if body["status"] in ("Completed", "Failed"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"{request_id} did not finish")


def _unknown(http: httpx.Client, method: str, path: str, request_id: str) -> None:
    """``request_id`` answers exactly as a request that never existed does."""
    never = "export-00000000-0000-0000-0000-000000000000"
    seen = problem(http.request(method, path.format(request_id)), 404)
    unknown = problem(http.request(method, path.format(never)), 404)
    assert seen == {**unknown, "detail": unknown["detail"].replace(never, request_id)}


def test_a_request_is_its_users_own(server: Server, tmp_path: Path) -> None:
    firm = workspace_id(server)
    db = tmp_path / "firm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        conn.executemany("INSERT INTO items VALUES (?, ?)", [(1, "a"), (2, "b")])
    bee = create_token(server, "default", "editor", "--name", "bee")
    boss = create_token(server, "default", "admin", "--name", "boss")
    ids = {
        line.split()[2]: line.split()[0]
        for line in egress_admin(server, "list-tokens").stdout.splitlines()[1:]
    }
    with api(server) as ann, api(server, bee) as b, api(server, boss) as admin:
        conn_id = ann.post(
            f"{API}/connections",
            json={"name": "firm", "type": "sqlite", "settings": {"path": str(db)}},
        ).json()["id"]
        tpl = ann.get(f"{API}/templates", params={"connectionId": conn_id}).json()["data"][0]
        path = f"{API}/idm/{firm}/t-{tpl['id']}/export"
        mine = ann.post(path).json()["requestId"]
        assert _poll(ann, mine)["status"] == "Completed"

        # Another user, an admin too: not found, as any unknown request.
        for other in (b, admin):
            _unknown(other, "GET", API + "/request/{}", mine)
            _unknown(other, "DELETE", API + "/request/{}", mine)
            _unknown(other, "GET", "/noCo/api/v1/requestLog/status/{}", mine)
            listed = other.get(f"{API}/requests").json()["data"]
            assert mine not in [r["requestId"] for r in listed]

        # A job still Pending is not another user's to cancel; its owner may.
        with workers_paused(server):
            pending = ann.post(path).json()["requestId"]
            _unknown(b, "DELETE", API + "/request/{}", pending)
            assert ann.get(f"{API}/request/{pending}").json()["status"] == "Pending"
            assert ann.delete(f"{API}/request/{pending}").status_code == 200
        assert _poll(ann, pending)["error"] == {"message": "cancelled", "retryable": False}

        # Bee's own export: its link names bee as the downloader (a link keeps the id only).
        own = b.post(path, json={"format": "csv"}).json()["requestId"]
        url = _poll(b, own)["result"]["fileUrl"]
        with anonymous(server) as web:
            assert web.get(url).text == '"id","name"\n1,"a"\n2,"b"\n'
        events = admin.get(f"{API}/audit-events", params={"action": "file.download"}).json()
        entry = next(e for e in events["data"] if e["object"]["id"] == own)
        assert entry["actor"] == {"type": "token", "id": ids["bee"], "name": ""}
