"""The walking skeleton over real HTTP, as a user would check it: connect → browse → configure →
submit → trigger → poll → download → compare every row with the source; re-run; list; a source
that breaks; run options validated through the API."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import sqlite3
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from egress.demo import create_orders_db
from tests.conftest import PgDatabase, Server, wait_for_status
from tests.e2e.helpers import (
    API,
    CONFIGS,
    DONE,
    configuration,
    problem,
    sqlite_connection,
    template,
    trigger,
    unsigned,
)

# A subset of the orders columns, in a different order than the table's, with nullable ones.
FIELDS = [
    "id",
    "order_number",
    "customer_name",
    "region",
    "amount",
    "is_gift",
    "ordered_at",
    "shipped_at",
    "notes",
]
EXECUTION_KEYS = {
    "extractConfigurationName",
    "extractConfigurationId",
    "id",
    "latestStatus",
    "latestProcessId",
    "latestRecordCount",
    "runs",
}
RUN_KEYS = {
    "run",
    "status",
    "processId",
    "startedAt",
    "completedAt",
    "recordCount",
    "errorMessage",
    "file",
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_orders_db(tmp_path_factory.mktemp("shop") / "shop.db", rows=500)


def _source_rows(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        query = f"SELECT {', '.join(FIELDS)} FROM orders ORDER BY id"
        return [dict(r) for r in conn.execute(query)]


def _csv_timestamp(value: str | None) -> str:
    return "" if value is None else f"{value}.000000"


def test_full_flow_on_a_sqlite_source(http: httpx.Client, shop: Path) -> None:
    # Connect.
    r = http.post(
        f"{API}/connections",
        json={"name": "shop", "type": "sqlite", "settings": {"path": str(shop)}},
    )
    assert r.status_code == 201, r.text
    conn = r.json()
    assert {"id", "name", "type", "settings", "createdAt"} <= set(conn)
    assert (conn["name"], conn["type"], conn["settings"]) == (
        "shop",
        "sqlite",
        {"path": str(shop)},
    )
    assert http.post(f"{API}/connections/{conn['id']}/test").json() == {
        "ok": True,
        "error": None,
        "warnings": [],
    }

    # Browse: FOLDER main → FILE orders → its COLUMNs with their types.
    r = http.get(f"{API}/connections/{conn['id']}/elements")
    assert r.status_code == 200
    tree = r.json()["data"]
    assert [(f["elementType"], f["name"]) for f in tree] == [("FOLDER", "main")]
    orders = next(t for t in tree[0]["children"] if t["name"] == "orders")
    assert (orders["elementType"], orders["path"]) == ("FILE", "main/orders")
    columns = {c["name"]: c for c in orders["children"]}
    assert len(columns) == 16
    assert {c["elementType"] for c in columns.values()} == {"COLUMN"}
    assert columns["amount"]["path"] == "main/orders/amount"
    types = {name: (c["type"], c["nullable"]) for name, c in columns.items()}
    assert types["id"] == ("int64", False)  # INTEGER PRIMARY KEY is the rowid: never NULL
    assert types["order_number"] == ("string", False)
    assert types["quantity"] == ("int64", False)
    assert types["amount"] == ("decimal(12,2)", False)
    assert types["is_gift"] == ("boolean", False)
    assert types["ordered_at"] == ("timestamp", False)
    assert types["shipped_at"] == ("timestamp", True)
    assert types["notes"] == ("string", True)

    # Its template: one per table, with the key and the same typed fields.
    templates = http.get(f"{API}/templates", params={"connectionId": conn["id"]}).json()
    assert set(templates) == {"data", "page", "limit", "totalSize", "totalPages"}
    tpl = next(t for t in templates["data"] if t["name"] == "main.orders")
    assert tpl["primaryKey"] == ["id"] and tpl["connectionId"] == conn["id"]
    assert [(f["name"], f["type"], f["nullable"]) for f in tpl["fields"]] == [
        (c["name"], c["type"], c["nullable"]) for c in orders["children"]
    ]
    assert http.get(f"{API}/templates/{tpl['id']}").json() == tpl

    # Configure: a DRAFT that cannot run yet.
    r = http.post(
        CONFIGS,
        json={
            "name": "daily_orders",
            "templateId": tpl["id"],
            "fields": FIELDS,
            "format": "csv",
            "destination": {"type": "storage", "path": "exports/orders"},
        },
    )
    assert r.status_code == 201, r.text
    cfg = r.json()
    assert (cfg["status"], cfg["active"], cfg["version"]) == ("DRAFT", False, 1)
    assert (cfg["fields"], cfg["format"], cfg["compression"]) == (FIELDS, "csv", "none")
    base = f"{CONFIGS}/{cfg['id']}"
    assert "DRAFT" in problem(http.post(f"{base}/executions"), 409)["detail"]
    assert http.get(f"{base}/executions").json()["totalSize"] == 0

    submitted = http.post(f"{base}/submit")
    assert submitted.status_code == 200
    assert (submitted.json()["status"], submitted.json()["active"]) == ("SUBMITTED", True)

    # Trigger: 202, Location, run 1 queued.
    r = http.post(f"{base}/executions")
    assert r.status_code == 202, r.text
    execution = r.json()
    eid = execution["id"]
    assert r.headers["location"] == f"{base}/executions/{eid}"
    assert EXECUTION_KEYS <= set(execution)
    assert (execution["extractConfigurationName"], execution["extractConfigurationId"]) == (
        "daily_orders",
        cfg["id"],
    )
    # The answer is the execution as read just after its commit: the embedded worker may have
    # claimed run 1 in between (seen in CI), so it is queued or already running, never more.
    assert execution["latestStatus"] in ("PENDING", "IN_PROGRESS")
    assert execution["latestRecordCount"] is None
    assert len(execution["runs"]) == 1
    queued = execution["runs"][0]
    assert RUN_KEYS <= set(queued)
    assert queued["status"] == execution["latestStatus"]
    assert (queued["run"], queued["file"], queued["errorMessage"]) == (1, None, None)
    assert http.get(r.headers["location"]).json()["id"] == eid

    # Poll to the end.
    details = wait_for_status(http, cfg["id"], eid, DONE)
    assert details["latestStatus"] == "COMPLETED", details
    run = details["runs"][0]
    assert RUN_KEYS <= set(run)
    assert (run["run"], run["status"], run["recordCount"], run["errorMessage"]) == (
        1,
        "COMPLETED",
        500,
        None,
    )
    assert details["latestRecordCount"] == 500
    assert run["processId"] and details["latestProcessId"] == run["processId"]
    assert run["startedAt"] <= run["completedAt"]
    assert {"fileName", "downloadUrl"} <= set(run["file"])
    assert run["file"]["downloadUrl"] == f"{base}/executions/{eid}/download?run=1"
    stamp = r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d"
    assert re.fullmatch(rf"daily_orders_{stamp}_v1\.csv", run["file"]["name"])

    # Download: every row equals the source, for exactly the chosen fields.
    body = http.get(run["file"]["downloadUrl"])
    assert body.status_code == 200
    reader = csv.DictReader(io.StringIO(body.content.decode("utf-8")))
    assert reader.fieldnames == FIELDS
    got = sorted(reader, key=lambda row: int(row["id"]))
    want = _source_rows(shop)
    assert len(got) == len(want) == 500
    for g, w in zip(got, want, strict=True):
        assert int(g["id"]) == w["id"]
        assert (g["order_number"], g["customer_name"], g["region"]) == (
            w["order_number"],
            w["customer_name"],
            w["region"],
        )
        assert Decimal(g["amount"]) == Decimal(str(w["amount"]))
        assert re.fullmatch(r"\d+\.\d\d", g["amount"]), g["amount"]  # DECIMAL(12,2)
        assert g["is_gift"] == ("true" if w["is_gift"] else "false")
        assert g["ordered_at"] == _csv_timestamp(w["ordered_at"])
        assert g["shipped_at"] == _csv_timestamp(w["shipped_at"])
        assert g["notes"] == (w["notes"] or "")
    assert any(w["notes"] and "🎁" in w["notes"] for w in want)  # non-ASCII made it through

    # The list of executions.
    listing = http.get(f"{base}/executions", params={"page": 0, "limit": 10}).json()
    assert (listing["page"], listing["limit"], listing["totalSize"], listing["totalPages"]) == (
        0,
        10,
        1,
        1,
    )
    item = listing["data"][0]
    assert item == {
        "id": eid,
        "extractConfigurationId": cfg["id"],
        "latestStatus": "COMPLETED",
        "latestStartedAt": run["startedAt"],
        "latestCompletedAt": run["completedAt"],
        "latestRunRecordCount": 500,
        "totalRuns": 1,
    }

    # Re-run: run 2 with its own file; both runs stay downloadable.
    r = http.post(f"{base}/executions/{eid}/rerun")
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"{base}/executions/{eid}"
    rerun = r.json()
    assert [(x["run"], x["status"]) for x in rerun["runs"]] == [(1, "COMPLETED"), (2, "PENDING")]
    assert rerun["latestStatus"] == "PENDING"
    details = wait_for_status(http, cfg["id"], eid, DONE)
    assert details["latestStatus"] == "COMPLETED"
    first, second = details["runs"]
    assert unsigned(first) == unsigned(run)  # each answer signs its own links
    assert (second["run"], second["status"], second["recordCount"]) == (2, "COMPLETED", 500)
    assert second["file"]["name"].endswith("_v2.csv")
    assert second["file"]["name"] != run["file"]["name"]
    assert second["file"]["downloadUrl"] == f"{base}/executions/{eid}/download?run=2"
    one = http.get(f"{base}/executions/{eid}/download", params={"run": 1})
    two = http.get(f"{base}/executions/{eid}/download", params={"run": 2})
    latest = http.get(f"{base}/executions/{eid}/download")
    assert (one.status_code, two.status_code, latest.status_code) == (200, 200, 200)
    assert run["file"]["name"] in one.headers["content-disposition"]
    assert second["file"]["name"] in two.headers["content-disposition"]
    assert second["file"]["name"] in latest.headers["content-disposition"]
    assert one.content == two.content == body.content  # same source, same bytes

    item = http.get(f"{base}/executions").json()["data"][0]
    assert (item["totalRuns"], item["latestStatus"], item["latestRunRecordCount"]) == (
        2,
        "COMPLETED",
        500,
    )
    assert item["latestStartedAt"] == second["startedAt"]


PG_TABLE = """CREATE TABLE items (
    id int PRIMARY KEY, name text, price numeric(8,2), added timestamptz, day date,
    active boolean, qty bigint)"""
PG_ROWS: list[tuple[Any, ...]] = [
    (
        i,
        f"item {i}" if i != 3 else 'tricky, "quoted"\nline 2 — ünïcode 🎉',
        Decimal(i) * Decimal("1.25"),
        datetime(2026, 3, 1, 10, tzinfo=UTC).replace(hour=(10 + i) % 24),
        date(2026, 3, 1 + i % 28),
        i % 2 == 0,
        i * 10_000_000_000,
    )
    for i in range(1, 41)
] + [(41, None, None, None, None, None, None)]


@pytest.fixture
def pg_items(pg_db: PgDatabase) -> PgDatabase:
    with pg_db.connect() as conn:
        conn.execute(PG_TABLE)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO items VALUES (%s, %s, %s, %s, %s, %s, %s)", PG_ROWS)
    return pg_db


def _jsonl_expected(row: tuple[Any, ...]) -> dict[str, Any]:
    id_, name, price, added, day, active, qty = row
    return {
        "id": id_,
        "name": name,
        "price": None if price is None else f"{price:.2f}",
        "added": None if added is None else added.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        "day": None if day is None else day.isoformat(),
        "active": active,
        "qty": qty,
    }


def _parquet_expected(row: tuple[Any, ...]) -> dict[str, Any]:
    id_, name, price, added, day, active, qty = row
    return {
        "id": id_,
        "name": name,
        "price": None if price is None else price.quantize(Decimal("0.01")),
        "added": added,
        "day": day,
        "active": active,
        "qty": qty,
    }


def test_postgresql_source_to_jsonl_and_parquet(http: httpx.Client, pg_items: PgDatabase) -> None:
    r = http.post(
        f"{API}/connections",
        json={
            "name": f"pg_{pg_items.name}",
            "type": "postgresql",
            "settings": {
                "host": "127.0.0.1",
                "port": 5432,
                "database": pg_items.name,
                "user": "postgres",
            },
        },
    )
    assert r.status_code == 201, r.text
    conn_id = r.json()["id"]
    tested = http.post(f"{API}/connections/{conn_id}/test").json()
    # postgres is a superuser: the test says so (tests/security/test_network.py has more).
    assert (tested["ok"], tested["error"], len(tested["warnings"])) == (True, None, 1)
    tree = http.get(f"{API}/connections/{conn_id}/elements").json()["data"]
    assert [(f["elementType"], f["name"]) for f in tree] == [("FOLDER", "public")]
    assert [(t["elementType"], t["name"]) for t in tree[0]["children"]] == [("FILE", "items")]

    tpl = template(http, conn_id, "public.items")
    assert tpl["primaryKey"] == ["id"]
    assert {f["name"]: f["type"] for f in tpl["fields"]} == {
        "id": "int32",
        "name": "string",
        "price": "decimal(8,2)",
        "added": "timestamptz",
        "day": "date",
        "active": "boolean",
        "qty": "int64",
    }
    want_ids = [row[0] for row in PG_ROWS]
    for fmt in ("jsonl", "parquet"):
        cfg = configuration(http, tpl["id"], f"items_{fmt}", format=fmt)
        eid = trigger(http, cfg)["id"]
        details = wait_for_status(http, cfg, eid, DONE)
        assert details["latestStatus"] == "COMPLETED", details
        assert details["latestRecordCount"] == len(PG_ROWS)
        file = details["runs"][0]["file"]
        assert file["name"].endswith(f"_v1.{fmt}")
        data = http.get(file["downloadUrl"])
        assert data.status_code == 200
        if fmt == "jsonl":
            rows = [json.loads(line) for line in data.content.decode("utf-8").splitlines()]
            assert sorted(r["id"] for r in rows) == want_ids
            by_id = {r["id"]: r for r in rows}
            for row in PG_ROWS:
                assert by_id[row[0]] == _jsonl_expected(row)
        else:
            rows = pq.read_table(io.BytesIO(data.content)).to_pylist()
            assert sorted(r["id"] for r in rows) == want_ids
            by_id = {r["id"]: r for r in rows}
            for row in PG_ROWS:
                assert by_id[row[0]] == _parquet_expected(row)


def test_a_source_table_that_disappears_fails_the_run(http: httpx.Client, tmp_path: Path) -> None:
    db = tmp_path / "fragile.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE doomed (id INTEGER PRIMARY KEY, label TEXT)")
        conn.executemany("INSERT INTO doomed VALUES (?, ?)", [(i, f"l{i}") for i in range(5)])
    tpl = template(http, sqlite_connection(http, db, "fragile"), "main.doomed")
    cfg = configuration(http, tpl["id"], "doomed_export")
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE doomed")

    eid = trigger(http, cfg)["id"]
    details = wait_for_status(http, cfg, eid, DONE)
    assert details["latestStatus"] == "FAILED", details
    run = details["runs"][0]
    assert run["status"] == "FAILED" and run["file"] is None
    assert "doomed" in run["errorMessage"], run["errorMessage"]
    assert run["completedAt"] is not None
    problem(http.get(f"{CONFIGS}/{cfg}/executions/{eid}/download"), 404)
    problem(http.get(f"{CONFIGS}/{cfg}/executions/{eid}/download", params={"run": 1}), 404)
    listed = http.get(f"{CONFIGS}/{cfg}/executions").json()["data"][0]
    assert listed["latestStatus"] == "FAILED"

    # The user repairs the source and re-runs the failed execution: run 2 succeeds.
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE doomed (id INTEGER PRIMARY KEY, label TEXT)")
        conn.execute("INSERT INTO doomed VALUES (1, 'back')")
    assert http.post(f"{CONFIGS}/{cfg}/executions/{eid}/rerun").status_code == 202
    details = wait_for_status(http, cfg, eid, DONE)
    assert [r["status"] for r in details["runs"]] == ["FAILED", "COMPLETED"]
    assert details["runs"][1]["recordCount"] == 1 and details["runs"][1]["errorMessage"] is None
    data = http.get(f"{CONFIGS}/{cfg}/executions/{eid}/download")
    assert data.status_code == 200
    assert list(csv.reader(io.StringIO(data.text))) == [["id", "label"], ["1", "back"]]


def test_run_options_are_validated_through_http(http: httpx.Client, shop: Path) -> None:
    tpl = template(http, sqlite_connection(http, shop, "shop_opts"), "main.orders")
    cfg = configuration(http, tpl["id"], "opts")
    base = f"{CONFIGS}/{cfg}"
    cases = [
        ({"whereClause": "1=1; DROP TABLE orders"}, "whereClause"),
        ({"whereClause": "pg_sleep(10) IS NULL"}, "whereClause"),
        ({"whereClause": "nope = 1"}, "whereClause"),
        ({"dateFrom": "2026-01-01"}, "dateFrom"),
        ({"extractOnlyNew": True}, "extractOnlyNew"),
        ({"selectAll": False}, "rows"),
        ({"rows": "17"}, "rows"),
        ({"unknown": 1}, "unknown"),
    ]
    for body, field in cases:
        problem(http.post(f"{base}/executions", json=body), 422, field)
    assert http.get(f"{base}/executions").json()["totalSize"] == 0
    with sqlite3.connect(shop) as db:
        assert db.execute("SELECT count(*) FROM orders").fetchone() == (500,)

    # A valid whereClause narrows the rows and is recorded with the execution.
    eid = trigger(http, cfg, whereClause="region = 'EU' AND id <= 100")["id"]
    details = wait_for_status(http, cfg, eid, DONE)
    assert details["options"]["whereClause"] == "region = 'EU' AND id <= 100"
    rows = list(csv.DictReader(io.StringIO(http.get(f"{base}/executions/{eid}/download").text)))
    with sqlite3.connect(shop) as db:
        want = [r[0] for r in db.execute("SELECT id FROM orders WHERE region='EU' AND id<=100")]
    assert sorted(int(r["id"]) for r in rows) == sorted(want) and want
    assert details["latestRecordCount"] == len(want)


def test_the_worker_is_a_child_process_started_again_when_it_dies(
    http: httpx.Client, server: Server, shop: Path
) -> None:
    """`egress serve` forks its worker: runs are carried out by another process than the
    API's; killed, that process is logged and started again, and the next run completes."""
    tpl = template(http, sqlite_connection(http, shop, "respawn"), "main.orders")
    cfg = configuration(http, tpl["id"], "respawn")
    first = wait_for_status(http, cfg, trigger(http, cfg)["id"], DONE)
    pid = int(str(first["latestProcessId"]).split(":")[1])
    assert first["latestStatus"] == "COMPLETED" and pid != server.process.pid
    os.kill(pid, signal.SIGKILL)
    logged = f"the worker process (pid {pid}) was killed by SIGKILL; starting another"
    deadline = time.monotonic() + 30
    while logged not in server.log():
        assert time.monotonic() < deadline, server.log()[-3000:]
        time.sleep(0.1)
    second = wait_for_status(http, cfg, trigger(http, cfg)["id"], DONE)
    assert second["latestStatus"] == "COMPLETED", second
    assert int(str(second["latestProcessId"]).split(":")[1]) not in (pid, server.process.pid)
