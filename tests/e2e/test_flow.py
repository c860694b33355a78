"""The walking skeleton over real HTTP: connect → browse → configure → submit → trigger →
poll → download → compare rows with the source; re-run; list; options through the API."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from egress.demo import create_orders_db
from tests.conftest import PgDatabase, Server, start_server, stop_server, wait_for_status

API = "/api/v1"
FIELDS = ["id", "order_number", "customer_name", "region", "amount", "is_gift", "ordered_at"]
DONE = {"COMPLETED", "COMPLETED_NO_DATA", "FAILED", "CANCELLED"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("flow"))
    yield s
    stop_server(s)
    log = s.log()
    assert "Traceback" not in log and '" 500' not in log, log[-3000:]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_orders_db(tmp_path_factory.mktemp("shop") / "shop.db", rows=500)


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def _source_rows(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(f"SELECT {', '.join(FIELDS)} FROM orders")]


def test_full_flow_on_a_sqlite_source(http: httpx.Client, shop: Path) -> None:
    r = http.post(
        f"{API}/connections",
        json={"name": "shop", "type": "sqlite", "settings": {"path": str(shop)}},
    )
    assert r.status_code == 201, r.text
    conn = r.json()
    assert set(conn) >= {"id", "name", "type", "settings", "createdAt"}
    assert http.post(f"{API}/connections/{conn['id']}/test").json() == {"ok": True, "error": None}

    tree = http.get(f"{API}/connections/{conn['id']}/elements").json()["data"]
    assert [(f["elementType"], f["name"]) for f in tree] == [("FOLDER", "main")]
    orders = next(t for t in tree[0]["children"] if t["name"] == "orders")
    assert orders["elementType"] == "FILE" and orders["path"] == "main/orders"
    columns = {c["name"]: c for c in orders["children"]}
    assert columns["id"]["elementType"] == "COLUMN"
    assert (columns["amount"]["type"], columns["shipped_at"]["nullable"]) == ("decimal(12,2)", True)

    templates = http.get(f"{API}/templates", params={"connectionId": conn["id"]}).json()
    assert set(templates) == {"data", "page", "limit", "totalSize", "totalPages"}
    tpl = next(t for t in templates["data"] if t["name"] == "main.orders")
    assert tpl["primaryKey"] == ["id"] and tpl["cursorField"] is None
    assert {"name": "ordered_at", "type": "timestamp", "nullable": False} in tpl["fields"]

    r = http.post(
        f"{API}/extraction-configurations",
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
    assert (cfg["status"], cfg["active"], cfg["compression"]) == ("DRAFT", False, "none")
    base = f"{API}/extraction-configurations/{cfg['id']}"

    blocked = http.post(f"{base}/executions")
    assert blocked.status_code == 409
    assert blocked.headers["content-type"] == "application/problem+json"
    assert "DRAFT" in blocked.json()["detail"]

    submitted = http.post(f"{base}/submit").json()
    assert (submitted["status"], submitted["active"]) == ("SUBMITTED", True)

    r = http.post(f"{base}/executions")
    assert r.status_code == 202
    execution = r.json()
    assert r.headers["location"] == f"{base}/executions/{execution['id']}"
    assert set(execution) >= {
        "extractConfigurationName",
        "extractConfigurationId",
        "id",
        "latestStatus",
        "latestProcessId",
        "latestRecordCount",
        "runs",
    }
    assert execution["extractConfigurationName"] == "daily_orders"
    assert execution["runs"][0]["run"] == 1
    assert execution["runs"][0]["status"] in ("PENDING", "IN_PROGRESS", "COMPLETED")

    details = wait_for_status(http, cfg["id"], execution["id"], DONE)
    assert details["latestStatus"] == "COMPLETED"
    run = details["runs"][0]
    assert set(run) >= {
        "run",
        "status",
        "processId",
        "startedAt",
        "completedAt",
        "recordCount",
        "errorMessage",
        "file",
    }
    assert run["recordCount"] == 500 and details["latestRecordCount"] == 500
    assert run["errorMessage"] is None and run["processId"]
    assert run["file"]["downloadUrl"] == f"{base}/executions/{execution['id']}/download?run=1"
    assert run["file"]["fileName"].startswith("daily_orders_")
    assert run["file"]["fileName"].endswith("_v1.csv")

    body = http.get(run["file"]["downloadUrl"])
    assert body.status_code == 200
    got = list(csv.DictReader(io.StringIO(body.text)))
    want = _source_rows(shop)
    assert len(got) == len(want) == 500
    for g, w in zip(sorted(got, key=lambda r: int(r["id"])), want, strict=True):
        assert int(g["id"]) == w["id"]
        assert g["order_number"] == w["order_number"]
        assert g["customer_name"] == w["customer_name"]
        assert g["region"] == w["region"]
        assert Decimal(g["amount"]) == Decimal(str(w["amount"]))
        assert len(g["amount"].split(".")[1]) == 2  # DECIMAL(12,2): always two places
        assert g["is_gift"] == ("true" if w["is_gift"] else "false")
        assert g["ordered_at"] == f"{w['ordered_at']}.000000"

    rerun = http.post(f"{base}/executions/{execution['id']}/rerun")
    assert rerun.status_code == 202
    assert [r["run"] for r in rerun.json()["runs"]] == [1, 2]
    details = wait_for_status(http, cfg["id"], execution["id"], DONE)
    second = details["runs"][1]
    assert second["status"] == "COMPLETED" and second["recordCount"] == 500
    assert second["file"]["fileName"].endswith("_v2.csv")
    assert second["file"]["fileName"] != run["file"]["fileName"]
    one = http.get(f"{base}/executions/{execution['id']}/download?run=1").content
    two = http.get(f"{base}/executions/{execution['id']}/download?run=2").content
    assert one == two == body.content

    listing = http.get(f"{base}/executions", params={"page": 0, "limit": 50}).json()
    assert (listing["page"], listing["limit"], listing["totalSize"], listing["totalPages"]) == (
        0,
        50,
        1,
        1,
    )
    item = listing["data"][0]
    assert item["id"] == execution["id"] and item["extractConfigurationId"] == cfg["id"]
    assert (item["latestStatus"], item["latestRunRecordCount"], item["totalRuns"]) == (
        "COMPLETED",
        500,
        2,
    )
    assert item["latestStartedAt"] and item["latestCompletedAt"]


def test_postgresql_source_to_jsonl_and_parquet(http: httpx.Client, pg_db: PgDatabase) -> None:
    with pg_db.connect() as conn:
        conn.execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(8,2),"
            " added timestamptz, active boolean)"
        )
        conn.execute(
            "INSERT INTO items SELECT g, 'item ' || g, g * 1.25,"
            " timestamptz '2026-03-01 12:00:00+02' + g * interval '1 hour', g % 2 = 0"
            " FROM generate_series(1, 40) g"
        )
    conn_id = http.post(
        f"{API}/connections",
        json={
            "name": f"pg_{pg_db.name}",
            "type": "postgresql",
            "settings": {
                "host": "127.0.0.1",
                "port": 5432,
                "database": pg_db.name,
                "user": "postgres",
            },
            "secrets": {"password": "not-needed-with-trust"},
        },
    ).json()["id"]
    tpl = http.get(f"{API}/templates", params={"connectionId": conn_id}).json()["data"][0]
    assert tpl["name"] == "public.items"
    for fmt in ("jsonl", "parquet"):
        cfg = http.post(
            f"{API}/extraction-configurations",
            json={
                "name": f"items_{fmt}_{pg_db.name}",
                "templateId": tpl["id"],
                "format": fmt,
                "destination": {"type": "storage", "path": "pg"},
            },
        ).json()
        base = f"{API}/extraction-configurations/{cfg['id']}"
        http.post(f"{base}/submit")
        eid = http.post(f"{base}/executions", json={"whereClause": "price > 10"}).json()["id"]
        details = wait_for_status(http, cfg["id"], eid, DONE)
        assert details["latestStatus"] == "COMPLETED", details
        assert details["options"]["whereClause"] == "price > 10"
        data = http.get(details["runs"][0]["file"]["downloadUrl"]).content
        if fmt == "jsonl":
            rows = [json.loads(line) for line in data.decode().splitlines()]
            first = next(r for r in rows if r["id"] == 9)
            assert first == {
                "id": 9,
                "name": "item 9",
                "price": "11.25",
                "added": "2026-03-01T19:00:00.000000Z",
                "active": False,
            }
        else:
            rows = pq.read_table(io.BytesIO(data)).to_pylist()
            first = next(r for r in rows if r["id"] == 9)
            assert str(first["price"]) == "11.25" and first["active"] is False
            assert first["added"].isoformat() == "2026-03-01T19:00:00+00:00"
        assert sorted(r["id"] for r in rows) == list(range(9, 41))


def test_options_are_validated_through_http(http: httpx.Client, shop: Path) -> None:
    conn = http.post(
        f"{API}/connections",
        json={"name": "shop_opts", "type": "sqlite", "settings": {"path": str(shop)}},
    ).json()
    tpl = next(
        t
        for t in http.get(f"{API}/templates", params={"connectionId": conn["id"]}).json()["data"]
        if t["name"] == "main.orders"
    )
    cfg = http.post(
        f"{API}/extraction-configurations",
        json={
            "name": "opts",
            "templateId": tpl["id"],
            "format": "csv",
            "destination": {"type": "storage", "path": "x"},
        },
    ).json()
    base = f"{API}/extraction-configurations/{cfg['id']}"
    http.post(f"{base}/submit")
    cases = [
        ({"whereClause": "1=1; DROP TABLE orders"}, "whereClause"),
        ({"whereClause": "pg_sleep(10) IS NULL"}, "whereClause"),
        ({"dateFrom": "2026-01-01"}, "dateFrom"),
        ({"extractOnlyNew": True}, "extractOnlyNew"),
        ({"selectAll": False}, "rows"),
        ({"rows": "17"}, "rows"),
        ({"unknown": 1}, "unknown"),
    ]
    for body, field in cases:
        r = http.post(f"{base}/executions", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["field"] == field, r.json()
    assert http.get(f"{base}/executions").json()["totalSize"] == 0
    with sqlite3.connect(shop) as db:
        assert db.execute("SELECT count(*) FROM orders").fetchone() == (500,)
