"""Bulk export (seed 003) throughput, end to end, side by side with `psql \\copy`.

    .venv/bin/python bench/export.py [--rows 1000000] [--recreate] [--formats csv,jsonl]

Uses the `orders` table of `bench/extract_throughput.py` (database `egress_bench`, created
once), starts a real `egress serve` (SQLite metadata, local files, embedded worker, the
warehouse in a PostgreSQL database `egress_bench_wh`), loads the table into a data table once,
then exports --rows objects by following cursors with the default job size (10 jobs for
1,000,000): POST export, poll every 50 ms until Completed, download the file from its
`fileUrl`, next cursor — from the PostgreSQL template and from the data table. `psql \\copy`
of the same columns is timed in the same run.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from extract_throughput import create_table, start_server
from references import ADMIN, COLUMNS, DB, psql_copy

WAREHOUSE = "egress_bench_wh"
FIELDS = [c.strip() for c in COLUMNS.split(",")]


def bench_connection(http: httpx.Client) -> str:
    """The id of a new connection to the bench database."""
    settings = {"host": "127.0.0.1", "port": 5432, "database": DB, "user": "postgres"}
    body = {"name": "bench", "type": "postgresql", "settings": settings}
    return str(http.post("/api/v1/connections", json=body).raise_for_status().json()["id"])


def fresh_warehouse() -> str:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{WAREHOUSE}" WITH (FORCE)')  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{WAREHOUSE}"')  # type: ignore[arg-type]
    return ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + (
        f"/{WAREHOUSE}"
    )


def wait(http: httpx.Client, request_id: str) -> dict[str, object]:
    while True:
        body: dict[str, object] = http.get(f"/api/v1/request/{request_id}").json()
        if body["status"] in ("Completed", "Failed"):
            if body["status"] == "Failed":
                raise RuntimeError(f"{request_id}: {body}")
            return body
        time.sleep(0.05)


def load_data_table(http: httpx.Client, template: str) -> None:
    cfg = http.post(
        "/api/v1/extraction-configurations",
        json={
            "name": "to_dt",
            "templateId": template,
            "fields": FIELDS,
            "format": "csv",
            "destination": {"type": "dataTable", "dataTable": "orders_dt", "mode": "upsert"},
        },
    ).raise_for_status()
    cid = cfg.json()["id"]
    http.post(f"/api/v1/extraction-configurations/{cid}/submit").raise_for_status()
    ex = http.post(f"/api/v1/extraction-configurations/{cid}/executions").json()
    while True:
        d = http.get(f"/api/v1/extraction-configurations/{cid}/executions/{ex['id']}").json()
        if d["latestStatus"] in ("COMPLETED", "FAILED"):
            assert d["latestStatus"] == "COMPLETED", d
            return
        time.sleep(0.2)


def chain(
    http: httpx.Client, firm: str, obj: str, fmt: str, out: Path
) -> tuple[float, float, int, int]:
    """Seconds to the last Completed (exports only) and with every download; objects; jobs."""
    cursor: str | None = None
    exporting = downloading = 0.0
    total = jobs = 0
    while True:
        started = time.perf_counter()
        body: dict[str, object] = {"format": fmt, "fields": FIELDS}
        if cursor:
            body["cursor"] = cursor
        rid = http.post(f"/api/v1/idm/{firm}/{obj}/export", json=body).raise_for_status()
        result = wait(http, rid.json()["requestId"])["result"]
        assert isinstance(result, dict)
        exporting += time.perf_counter() - started
        started = time.perf_counter()
        with httpx.stream("GET", result["fileUrl"], timeout=300) as r, out.open("wb") as f:
            r.raise_for_status()
            for chunk in r.iter_bytes(1 << 20):
                f.write(chunk)
        downloading += time.perf_counter() - started
        total += int(result["total"])
        jobs += 1
        cursor = result["nextCursor"]
        if cursor is None:
            return exporting, exporting + downloading, total, jobs


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--recreate", action="store_true")
    parser.add_argument("--formats", default="csv,jsonl")
    args = parser.parse_args()
    create_table(args.rows, args.recreate)
    work = Path(tempfile.mkdtemp(prefix="egress-bench-export-"))
    server = start_server(work / "data", {"EGRESS_WAREHOUSE_URL": fresh_warehouse()})
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=60
        ) as http:
            with sqlite3.connect(work / "data" / "egress.db") as meta:
                found = meta.execute("SELECT id FROM workspaces WHERE name = 'default'")
                firm = found.fetchone()[0]
            connection = bench_connection(http)
            templates = http.get(
                "/api/v1/templates", params={"connectionId": connection, "limit": 100}
            ).json()["data"]
            template = next(t["id"] for t in templates if t["name"] == "public.orders")
            print("loading the data table …", flush=True)
            load_data_table(http, template)
            copy_s = psql_copy(work / "psql.csv")
            rows = [("psql `\\copy` CSV", copy_s, copy_s, args.rows, 1)]
            for fmt in args.formats.split(","):
                for label, obj in (("template", f"t-{template}"), ("data table", "orders_dt")):
                    exp_s, all_s, total, jobs = chain(http, firm, obj, fmt, work / "out")
                    rows.append((f"{fmt.upper()} from the {label}", exp_s, all_s, total, jobs))
                    print(rows[-1], flush=True)
    finally:
        server.process.terminate()
        server.process.wait(30)
    print("\n| case | jobs | seconds (exports) | with downloads | objects/s | vs psql |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, exp_s, all_s, total, jobs in rows:
        rate = total / all_s
        print(
            f"| {label} | {jobs} | {exp_s:.2f} | {all_s:.2f} | {rate:,.0f} | "
            f"{copy_s / all_s:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
