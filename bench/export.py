"""Bulk export (seed 003) throughput, end to end, side by side with `psql \\copy`.

    .venv/bin/python bench/export.py [--rows 1000000] [--recreate]
        [--formats csv,csv-postgres,jsonl] [--poll 0.05] [--wait 30]

Uses the `orders` table of `bench/extract_throughput.py` (database `egress_bench`, or
EGRESS_BENCH_DB; created once), starts a real `egress serve` (SQLite metadata, local files,
embedded worker, the warehouse in a PostgreSQL database `<that database>_wh`), loads the table
into a data table once, then exports --rows objects by following cursors with the default job
size (10 jobs for 1,000,000): POST export, poll every --poll seconds until Completed, download
the file from its `fileUrl`, next cursor — from the PostgreSQL template and from the data
table. `csv-postgres` is CSV with `"csvDialect": "postgres"` in the POST body (PostgreSQL's
own rendering; the data table's too, its warehouse being PostgreSQL). `psql \\copy` of the same
columns is timed once at the start and again just before each case (the ratio is to that one).
With --wait, each case runs twice: polling every --poll seconds, then long-polling
(``GET /api/v1/request/{id}?wait=<--wait>``, the Egress extra that answers as soon as the status
changes). Each case prints the median timeline of its jobs (POST → queued → claimed → completed
→ seen by the poll → downloaded), the server's CPU seconds and its PostgreSQL backends'.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from extract_throughput import create_table
from references import ADMIN, COLUMNS, DB, psql_copy
from serving import backend_cpu, cpu_growth, cpu_s, scratch_dir, start_server

# Beside the bench database, named after it (EGRESS_BENCH_DB keeps concurrent benchmarks apart).
WAREHOUSE = f"{DB}_wh"
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


def wait(http: httpx.Client, request_id: str, poll_s: float, wait_s: float) -> dict[str, object]:
    """The request once it ended: polled every ``poll_s``, or long-polled (``wait_s`` > 0)."""
    params = {"wait": wait_s} if wait_s > 0 else {}
    while True:
        found = http.get(f"/api/v1/request/{request_id}", params=params, timeout=wait_s + 60)
        body: dict[str, object] = found.raise_for_status().json()
        if body["status"] in ("Completed", "Failed"):
            if body["status"] == "Failed":
                raise RuntimeError(f"{request_id}: {body}")
            return body
        if not wait_s:
            time.sleep(poll_s)


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


@dataclass
class Job:
    """One job's timeline, in seconds since the epoch: the client's POST, the server's
    queued / claimed (started) / completed marks, the client seeing Completed, the download's
    end."""

    request_id: str
    posted: float
    seen: float = 0.0
    downloaded: float = 0.0
    queued: float = 0.0
    started: float = 0.0
    completed: float = 0.0


@dataclass
class Chain:
    exporting: float = 0.0  # to each Completed, polls included
    downloading: float = 0.0
    total: int = 0
    jobs: list[Job] = field(default_factory=list)


def chain(
    http: httpx.Client, firm: str, obj: str, fmt: str, out: Path, poll_s: float, wait_s: float
) -> Chain:
    """Follow the cursors from none to the end: exports and downloads timed apart."""
    cursor: str | None = None
    done = Chain()
    fmt, _, dialect = fmt.partition("-")  # csv-postgres: CSV in PostgreSQL's own rendering
    while True:
        body: dict[str, object] = {"format": fmt, "fields": FIELDS}
        if dialect:
            body["csvDialect"] = dialect
        if cursor:
            body["cursor"] = cursor
        job = Job("", time.time())
        rid = http.post(f"/api/v1/idm/{firm}/{obj}/export", json=body).raise_for_status()
        job.request_id = rid.json()["requestId"]
        result = wait(http, job.request_id, poll_s, wait_s)["result"]
        assert isinstance(result, dict)
        job.seen = time.time()
        with httpx.stream("GET", result["fileUrl"], timeout=300) as r, out.open("wb") as f:
            r.raise_for_status()
            for chunk in r.iter_bytes(1 << 20):
                f.write(chunk)
        job.downloaded = time.time()
        done.exporting += job.seen - job.posted
        done.downloading += job.downloaded - job.seen
        done.total += int(result["total"])
        done.jobs.append(job)
        cursor = result["nextCursor"]
        if cursor is None:
            return done


def server_marks(meta: Path, jobs: list[Job]) -> None:
    """The runs' queued, started (claimed) and completed times from the metadata database."""
    with sqlite3.connect(meta) as db:
        for job in jobs:
            row = db.execute(
                "SELECT r.queued_at, r.started_at, r.completed_at FROM requests q "
                "JOIN runs r ON r.id = q.run_id WHERE q.id = ?",
                (job.request_id,),
            ).fetchone()
            job.queued, job.started, job.completed = (
                datetime.fromisoformat(v).replace(tzinfo=UTC).timestamp() for v in row
            )


def timeline(jobs: list[Job]) -> str:
    """Median milliseconds of each step of a job."""

    def ms(a: str, b: str) -> str:
        return f"{median(getattr(j, b) - getattr(j, a) for j in jobs) * 1000:.0f}"

    return (
        f"POST→queued {ms('posted', 'queued')}, queued→claimed {ms('queued', 'started')}, "
        f"claimed→completed {ms('started', 'completed')}, completed→seen "
        f"{ms('completed', 'seen')}, download {ms('seen', 'downloaded')} (ms, median of "
        f"{len(jobs)} jobs)"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--recreate", action="store_true")
    parser.add_argument("--formats", default="csv,csv-postgres,jsonl")
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between status polls")
    parser.add_argument(
        "--wait", type=float, default=0, help="also long-poll each case with ?wait= seconds"
    )
    args = parser.parse_args()
    create_table(args.rows, args.recreate)
    work = scratch_dir("egress-bench-export-")
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
            rows = [("psql `\\copy` CSV", copy_s, copy_s, args.rows, 1, copy_s, 0.0, "n/a")]
            waits = [("", 0.0)] + ([(", long poll", args.wait)] if args.wait else [])
            cases = [
                (fmt, label, obj, how, wait_s)
                for fmt in args.formats.split(",")
                for label, obj in (("template", f"t-{template}"), ("data table", "orders_dt"))
                for how, wait_s in waits
            ]
            for fmt, label, obj, how, wait_s in cases:
                before = psql_copy(work / "psql.csv")  # the reference just before
                cpu, backends = cpu_s(server.process.pid), backend_cpu(ADMIN, [DB, WAREHOUSE])
                done = chain(http, firm, obj, fmt, work / "out", args.poll, wait_s)
                cpu = cpu_s(server.process.pid) - cpu
                # Only the COPY path (CSV) keeps its session from job to job; the Arrow path's
                # (ADBC) sessions end with each job, before this reading could count them.
                pg_cpu = cpu_growth(backends, backend_cpu(ADMIN, [DB, WAREHOUSE]))
                pg_cpu_shown = f"{pg_cpu:.2f}" if fmt.startswith("csv") else "n/a"
                server_marks(work / "data" / "egress.db", done.jobs)
                rows.append(
                    (
                        f"{fmt.upper().replace('-POSTGRES', ' (csvDialect postgres)')} from the "
                        f"{label}{how}",
                        done.exporting,
                        done.exporting + done.downloading,
                        done.total,
                        len(done.jobs),
                        before,
                        cpu,
                        pg_cpu_shown,
                    )
                )
                print(rows[-1], timeline(done.jobs), sep="\n  ", flush=True)
    finally:
        server.process.terminate()
        server.process.wait(30)
    print(
        "\n| case | jobs | seconds (exports) | with downloads | objects/s | vs psql just before "
        "(exports / with downloads) | server CPU s | PostgreSQL backends' CPU s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, exp_s, all_s, total, jobs, ref_s, cpu, pg_cpu in rows:
        print(
            f"| {label} | {jobs} | {exp_s:.2f} | {all_s:.2f} | {total / all_s:,.0f} | "
            f"{ref_s / exp_s:.2f}x / {ref_s / all_s:.2f}x | {cpu:.2f} | {pg_cpu} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
