"""Seed 003 (Asynchronous Bulk Export API) walked line by line against a real server: every
path, field, status value and limit the document states, as a client written against it
would see them (plus Egress's documented extras: formats, fields, listing, cancelling)."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Server
from tests.e2e.helpers import anonymous, api, problem, workers_paused, workspace_id

API = "/api/v1"
REQUEST_ID = re.compile(r"^export-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SEED_STATUSES = {"Pending", "InProgress", "Completed", "Failed"}
JOB_SIZE = 100_000  # "Export Job Size: 100,000 objects per job"


def _source(tmp_path: Path) -> Path:
    db = tmp_path / "firm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        conn.executemany(
            "INSERT INTO items VALUES (?, ?)", ((i, f"item {i}") for i in range(1, JOB_SIZE + 2))
        )
        conn.execute("CREATE TABLE codes (code TEXT, label TEXT)")
        conn.executemany("INSERT INTO codes VALUES (?, ?)", [("b", "bee"), ("a", "ay")])
    return db


def _poll(http: httpx.Client, request_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Poll until a final status; every body seen on the way."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        r = http.get(f"{API}/request/{request_id}")
        assert r.status_code == 200, r.text
        body = r.json()
        seen.append(body)
        assert body["requestId"] == request_id and body["status"] in SEED_STATUSES
        if body["status"] in ("Completed", "Failed"):
            return body, seen
        time.sleep(0.05)
    raise AssertionError(f"{request_id} did not finish: {seen[-1]}")


def _shape(body: dict[str, Any]) -> None:
    """Each status carries exactly what the seed shows for it."""
    status = body["status"]
    if status == "Pending":
        assert set(body) <= {"requestId", "status", "holdReason"}, body
    elif status == "InProgress":
        assert set(body) == {"requestId", "status", "progress"}, body
        assert set(body["progress"]) == {"processed"} and isinstance(
            body["progress"]["processed"], int
        )
    elif status == "Completed":
        assert set(body) == {"requestId", "status", "result"}, body
        assert set(body["result"]) == {"total", "fileUrl", "nextCursor"}, body
    else:
        assert set(body) == {"requestId", "status", "error"}, body
        assert set(body["error"]) == {"message", "retryable"}


def test_seed_003_line_by_line(server: Server, tmp_path: Path) -> None:
    firm = workspace_id(server)  # the bootstrap token's workspace
    db = _source(tmp_path)
    with api(server) as http, anonymous(server) as web:
        conn_id = http.post(
            f"{API}/connections",
            json={"name": "firm", "type": "sqlite", "settings": {"path": str(db)}},
        ).json()["id"]
        templates = http.get(f"{API}/templates", params={"connectionId": conn_id}).json()["data"]
        items = next(t["id"] for t in templates if t["name"] == "main.items")
        codes_tpl = next(t["id"] for t in templates if t["name"] == "main.codes")
        objects = http.get(f"{API}/idm/{firm}/objects").json()["data"]
        assert {"name": f"t-{items}", "kind": "template", "title": "main.items"}.items() <= (
            next(o for o in objects if o["name"] == f"t-{items}").items()
        )
        assert f"t-{codes_tpl}" not in {o["name"] for o in objects}  # no key to page by

        # Step 1: POST /api/v1/idm/{firm-id}/[objects]/export; "1 active job per user":
        # twenty at once make one job, the others 429 naming it.
        path = f"{API}/idm/{firm}/t-{items}/export"
        # The worker paused: a job done within the burst would free the user's slot.
        with workers_paused(server), ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda _: http.post(path), range(20)))
        ok = [r for r in answers if r.status_code == 200]
        assert len(ok) == 1, [r.status_code for r in answers]
        assert ok[0].json().keys() == {"requestId"}  # "Response 200 Success"
        first = ok[0].json()["requestId"]
        assert REQUEST_ID.match(first)
        for r in answers:
            if r.status_code != 200:
                body = problem(r, 429)
                assert first in body["detail"] and int(r.headers["Retry-After"]) > 0

        # Step 2: GET /api/v1/request/{request-id} until Completed.
        done, seen = _poll(http, first)
        for body in seen:
            _shape(body)
        result = done["result"]
        assert result["total"] == JOB_SIZE  # "a maximum of 100,000 objects"
        assert isinstance(result["nextCursor"], str)  # more remain

        # Step 3: download with the fileUrl; it needs no bearer token.
        assert result["fileUrl"].startswith(server.base_url + "/")
        file = web.get(result["fileUrl"])
        assert file.status_code == 200
        lines = file.text.splitlines()
        assert len(lines) == JOB_SIZE
        assert json.loads(lines[0]) == {"id": 1, "name": "item 1"}
        assert json.loads(lines[-1]) == {"id": JOB_SIZE, "name": f"item {JOB_SIZE}"}
        problem(web.get(result["fileUrl"][:-4] + "AAAA"), 403)

        # "Repeat until the next_cursor field is null" (the JSON field is nextCursor).
        nxt = http.post(path, json={"cursor": result["nextCursor"]})
        assert nxt.status_code == 200
        last, seen = _poll(http, nxt.json()["requestId"])
        for body in seen:
            _shape(body)
        assert last["result"]["total"] == 1 and last["result"]["nextCursor"] is None
        assert web.get(last["result"]["fileUrl"]).text == '{"id":100001,"name":"item 100001"}\n'

        # Cursors are opaque and signed: changed or foreign ones are 400 naming the field.
        bad = problem(http.post(path, json={"cursor": result["nextCursor"] + "x"}), 400)
        assert bad["errors"][0]["field"] == "cursor"
        problem(http.post(path, json={"cursor": 5}), 422, "cursor")
        problem(http.post(path, json={"format": "xml"}), 422, "format")
        problem(http.post(f"{API}/idm/{firm}/nothing/export"), 404)
        problem(http.post(f"{API}/idm/not-my-firm/t-{items}/export"), 404)
        problem(http.get(f"{API}/idm/not-my-firm/objects"), 404)
        problem(http.post(f"{API}/idm/{firm}/t-{codes_tpl}/export"), 422)
        problem(http.get(f"{API}/request/export-nope"), 404)
        problem(web.get(f"{API}/request/{first}"), 401)

        # Egress extras: CSV with chosen fields; my requests, newest first; cancelling.
        csv_job = http.post(path, json={"format": "csv", "fields": ["name"]}).json()["requestId"]
        cancelled = http.delete(f"{API}/request/{csv_job}")
        assert cancelled.status_code in (200, 409), cancelled.text
        final, _ = _poll(http, csv_job)
        if cancelled.status_code == 200:
            assert final["status"] == "Failed"
            assert final["error"] == {"message": "cancelled", "retryable": False}
        mine = http.get(f"{API}/requests").json()
        assert [r["requestId"] for r in mine["data"]] == [csv_job, nxt.json()["requestId"], first]
        assert mine["totalSize"] == 3
        completed = http.get(f"{API}/requests", params={"status": "Completed"}).json()["data"]
        assert {r["requestId"] for r in completed} >= {first, nxt.json()["requestId"]}
        problem(http.get(f"{API}/requests", params={"status": "Done"}), 422, "query.status")
