"""One configuration and one run seen through every face where they overlap: an extract made
through seed 001, run through seed 002, read back through the native API, seed 001 again and
seed 003 (its request and an export of its data table) — the same execution, the same records."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Server
from tests.e2e.helpers import sqlite_connection, template, workspace_id

API = "/api/v1"
SOURCE = [(1, "EU", 10), (2, "US", 20), (3, "EU", 30)]


def _poll(http: httpx.Client, path: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        body: dict[str, Any] = http.get(path).json()
        if body["status"] in ("Completed", "Failed"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_one_run_through_every_face(server: Server, http: httpx.Client, tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT, amount INTEGER)")
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?)", SOURCE)
    conn.close()
    connection = sqlite_connection(http, db, "shop")
    tpl = template(http, connection, "main.orders")["id"]

    # Seed 001: the extract (a submitted configuration loading the data table "Orders").
    made = http.post("/api/v3.1/extracts/", json={"data_table_title": "Orders", "template_id": tpl})
    assert made.status_code == 201, made.text
    extract = made.json()

    # Seed 002: run it from its table's catalog element, upserting into its data table.
    tree = http.get(f"{API}/connections/{connection}/elements").json()["data"]
    element = next(f["id"] for f in tree[0]["children"] if f["name"] == "orders")
    ws = workspace_id(server)
    run = http.post(
        f"/noCo/api/v2/workspaces/{ws}/extraction/{extract['id']}/FILE/{element}/run",
        params={"extractOnlyNew": "false"},
        json={"selectAll": True},
    )
    assert run.status_code == 202, run.text
    started = run.json()
    request = _poll(http, f"/noCo/api/v1/requestLog/status/{started['requestId']}")
    assert request["status"] == "Completed" and request["result"]["total"] == len(SOURCE)
    assert request["executionId"] == started["executionId"]

    # Seed 003 reads the same request (without the extraction's execution id).
    assert http.get(f"{API}/request/{started['requestId']}").json() == {
        k: v for k, v in request.items() if k != "executionId"
    }

    # The native API: the same execution, the configuration is the extract.
    execution = http.get(
        f"{API}/extraction-configurations/{extract['id']}/executions/{started['executionId']}"
    ).json()
    assert execution["latestStatus"] == "COMPLETED"
    assert execution["latestRecordCount"] == len(SOURCE)
    assert execution["extractConfigurationName"] == "Orders"
    listed = http.get(f"{API}/extraction-configurations/{extract['id']}/executions").json()
    assert [e["id"] for e in listed["data"]] == [started["executionId"]]

    # Seed 001 again: synced, into the data table the native API lists.
    again = http.get(f"/api/v3/extracts/{extract['id']}").json()
    assert again["status"] == "active" and again["last_sync"] is not None
    table = http.get(f"{API}/data-tables/{again['data_table_id']}").json()
    rows = http.get(f"{API}/data-tables/{table['id']}/rows", params={"limit": 100}).json()["data"]
    got = sorted((r["id"], r["region"], r["amount"]) for r in rows)
    assert got == SOURCE
    # The extract's system columns are the configuration's: a seed-002 run adds them too.
    assert {r["account_id"] for r in rows} == {"main"}
    assert all(r["__insert_date"] for r in rows)

    # Seed 003: an export of that data table holds the same records.
    export = http.post(f"{API}/idm/{ws}/{table['name']}/export", json={"format": "jsonl"})
    assert export.status_code == 200, export.text
    done = _poll(http, f"{API}/request/{export.json()['requestId']}")
    assert done["result"]["total"] == len(SOURCE)
    lines = httpx.get(done["result"]["fileUrl"]).text.splitlines()
    exported = sorted((r["id"], r["region"], r["amount"]) for r in map(json.loads, lines))
    assert exported == SOURCE
