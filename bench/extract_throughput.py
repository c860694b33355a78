"""Extraction throughput through the running service, side by side with `psql \\copy`.

    .venv/bin/python bench/extract_throughput.py [--rows 1000000] [--recreate] [--cases …]
    .venv/bin/python bench/extract_throughput.py --scaling [--scale 10]
    .venv/bin/python bench/extract_throughput.py --wide 200000

Creates (once) a PostgreSQL database `egress_bench` with an `orders` table of --rows rows and
12 mixed columns, starts a real `egress serve` (SQLite metadata, local files, embedded worker)
on a free port, and times trigger → COMPLETED over HTTP for: CSV (COPY fast path), CSV with a
float column too (the COPY path since 2026-12-03: before, a float took the Arrow path), CSV
with csvDialect "postgres" (plain COPY: psql's 12 columns, then with the float column too),
JSONL, Parquet, Parquet split by region, and the same rows read back from a folder of Parquet
files (a `files` connection) into CSV and Parquet, and the same rows from MariaDB/MySQL
(127.0.0.1:3306, root) into CSV. `psql \\copy … CSV HEADER` of the same columns is timed in the
same run, and beside the Parquet, files and MySQL cases the reference tool for them
(bench/references.py: raw ADBC → pyarrow Parquet, DuckDB, `mariadb --batch`). The first case
runs once untimed first (a fresh server's first run pays one-time costs). Peak RSS of the
server is sampled during each extraction. --scaling repeats CSV, JSONL and Parquet at --scale
(4) times the rows with a fresh server, to show that memory does not grow with the table.
--wide N instead extracts N rows of 2 KB text from MariaDB/MySQL (127.0.0.1:3306, root) and
PostgreSQL into CSV (Arrow path), with EGRESS_BATCH_BYTES at its default and effectively off,
recording the server's peak RSS: what bounding batches by bytes saves on wide rows."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import adbc_driver_postgresql.dbapi as adbc_pg
import httpx
import psycopg
import pyarrow.parquet as pq
import pymysql

from references import (
    ADMIN,
    COLUMNS,
    DB,
    adbc_parquet,
    duckdb_files,
    mariadb_batch,
    mysql_orders,
    psql_copy,
)
from serving import PeakRss, Server, rss_kb, scratch_dir, start_server

# Each Egress case: (format, extra columns, split field, source, parallelism); the reference
# it is compared with beside psql, timed just before it in the same run.
CASES: dict[str, tuple[str, list[str], str | None, str, int]] = {
    "csv (COPY fast path)": ("csv", [], None, "postgresql", 1),
    "csv (+ the float)": ("csv", ["weight"], None, "postgresql", 1),
    "csv (csvDialect postgres)": ("csv", [], None, "postgresql", 1),
    "csv (csvDialect postgres, + the float)": ("csv", ["weight"], None, "postgresql", 1),
    "jsonl": ("jsonl", [], None, "postgresql", 1),
    "jsonl (+ the float)": ("jsonl", ["weight"], None, "postgresql", 1),
    "parquet": ("parquet", [], None, "postgresql", 1),
    "parquet split by region (8)": ("parquet", [], "region", "postgresql", 1),
    "csv split by region (8)": ("csv", [], "region", "postgresql", 1),
    "csv split by region (8, + the float)": ("csv", ["weight"], "region", "postgresql", 1),
    "files: parquet folder → csv": ("csv", [], None, "files", 1),
    "files: parquet folder → parquet": ("parquet", [], None, "files", 1),
    "mysql: csv": ("csv", [], None, "mysql", 1),
    "parallel 2: csv": ("csv", [], None, "postgresql", 2),
    "parallel 2: csv (+ the float)": ("csv", ["weight"], None, "postgresql", 2),
    "parallel 2: csv (csvDialect postgres)": ("csv", [], None, "postgresql", 2),
    "parallel 2: jsonl": ("jsonl", [], None, "postgresql", 2),
    "parallel 2: parquet": ("parquet", [], None, "postgresql", 2),
    "parallel 2: mysql csv": ("csv", [], None, "mysql", 2),
}
# Cases configured with csvDialect "postgres" (PostgreSQL's own rendering, plain COPY): the
# same 12 columns as psql's (the like-for-like figure), and with the float column too.
POSTGRES_DIALECT_CASES = {
    "csv (csvDialect postgres)",
    "csv (csvDialect postgres, + the float)",
    "parallel 2: csv (csvDialect postgres)",
}
# psql again, just before each CSV/JSONL case: a shared machine's load moves within a run.
PSQL_AGAIN = "psql \\copy CSV (again, just before)"
# ... and with the float column too, just before each case that copies it: the same columns.
PSQL_FLOAT = "psql \\copy CSV + the float (just before)"
LONG_POLL_S = 30  # each status read waits up to this long for the status to change
REFERENCES = {
    "csv (COPY fast path)": PSQL_AGAIN,
    "csv (+ the float)": PSQL_FLOAT,
    "csv (csvDialect postgres)": PSQL_AGAIN,
    "csv (csvDialect postgres, + the float)": PSQL_FLOAT,
    "jsonl": PSQL_AGAIN,
    "jsonl (+ the float)": PSQL_FLOAT,
    "parquet": "ADBC → pyarrow Parquet (raw Python)",
    "files: parquet folder → csv": "DuckDB folder → CSV (2 threads)",
    "files: parquet folder → parquet": "DuckDB folder → Parquet (2 threads)",
    "mysql: csv": "mariadb --batch > file",
}


def create_table(rows: int, recreate: bool) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone()
        if exists and recreate:
            conn.execute(f'DROP DATABASE "{DB}" WITH (FORCE)')  # type: ignore[arg-type]
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB}"')  # type: ignore[arg-type]
    url = ADMIN.rsplit("/", 1)[0] + f"/{DB}"
    with psycopg.connect(url, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'orders'").fetchone()
        if have and have[0]:
            count = conn.execute("SELECT count(*) FROM orders").fetchone()
            if count and count[0] == rows:
                return
            conn.execute("DROP TABLE orders")
        print(f"generating {rows:,} rows …", flush=True)
        conn.execute(
            """CREATE TABLE orders (
                id bigint PRIMARY KEY, order_number text NOT NULL, customer text NOT NULL,
                region text NOT NULL, quantity int NOT NULL, amount numeric(12,2) NOT NULL,
                is_gift boolean NOT NULL, order_date date NOT NULL,
                created_at timestamptz NOT NULL, shipped_at timestamp, notes text, ref uuid,
                weight double precision)"""
        )
        conn.execute(
            """INSERT INTO orders SELECT g, 'ORD-' || lpad(g::text, 8, '0'),
                'customer ' || (g %% 9973),
                (ARRAY['EU','NA','APAC','LATAM','MEA','CN','IN','OC'])[1 + g %% 8],
                1 + g %% 9, ((g %% 100000) / 100.0)::numeric(12,2), g %% 10 = 0,
                date '2026-01-01' + (g %% 365),
                timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second',
                CASE WHEN g %% 3 = 0 THEN NULL
                     ELSE timestamp '2026-01-02' + g * interval '1 second' END,
                CASE WHEN g %% 4 = 0 THEN NULL ELSE 'note ' || g || ' - ünïcødé' END,
                md5(g::text)::uuid, g * 0.125
              FROM generate_series(1, %s) g""",
            (rows,),
        )
        # Sets hint bits and the visibility map now, so the first timed scan (psql's, as it
        # happens) is not the one that pays for rewriting every page of a fresh table.
        conn.execute("VACUUM (ANALYZE) orders")


def submitted_configuration(
    http: httpx.Client,
    template: str,
    name: str,
    fmt: str,
    fields: list[str],
    split_by: str | None = None,
    parallelism: int = 1,
    csv_dialect: str | None = None,
) -> str:
    """A submitted configuration of one case writing to storage; its id."""
    body: dict[str, object] = {
        "name": name,
        "templateId": template,
        "fields": fields,
        "format": fmt,
        "destination": {"type": "storage", "path": "bench"},
    }
    if split_by:
        body["splitBy"] = split_by
    if parallelism > 1:
        body["parallelism"] = parallelism
    if csv_dialect:
        body["csvDialect"] = csv_dialect
    cfg = http.post("/api/v1/extraction-configurations", json=body).raise_for_status().json()
    http.post(f"/api/v1/extraction-configurations/{cfg['id']}/submit").raise_for_status()
    return str(cfg["id"])


def extract(
    http: httpx.Client,
    template: str,
    name: str,
    fmt: str,
    fields: list[str],
    pid: int,
    split_by: str | None = None,
    parallelism: int = 1,
    csv_dialect: str | None = None,
) -> tuple[float, int, int, float, float]:
    cfg = {
        "id": submitted_configuration(
            http, template, name, fmt, fields, split_by, parallelism, csv_dialect
        )
    }
    with PeakRss(pid) as rss:
        started = time.perf_counter()
        ex = http.post(f"/api/v1/extraction-configurations/{cfg['id']}/executions").json()
        while True:  # long polls (?wait=): answered as soon as the status changes
            d = http.get(
                f"/api/v1/extraction-configurations/{cfg['id']}/executions/{ex['id']}",
                params={"wait": LONG_POLL_S},
                timeout=LONG_POLL_S + 30,
            ).json()
            if d["latestStatus"] in ("COMPLETED", "FAILED", "COMPLETED_NO_DATA"):
                break
        elapsed = time.perf_counter() - started
    run = d["runs"][-1]
    if d["latestStatus"] != "COMPLETED":
        raise RuntimeError(f"{name}: {run['errorMessage']}")
    # The server's own span of the run (queued → completed): what the client adds to
    # ``elapsed`` is the difference (the trigger's answer, the long poll's answer).
    served = datetime.fromisoformat(run["completedAt"]) - datetime.fromisoformat(run["queuedAt"])
    return elapsed, int(d["latestRecordCount"]), rss.peak, rss.cpu, served.total_seconds()


def parquet_folder(out: Path) -> Path:
    """The orders table as a folder of Parquet files of 250,000 rows (the files-source case)."""
    folder = out / "orders"
    folder.mkdir(parents=True)
    url = ADMIN.rsplit("/", 1)[0] + f"/{DB}"
    select = COLUMNS.replace("ref", "ref::text AS ref")
    with adbc_pg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT {select} FROM orders ORDER BY id")
        writer: pq.ParquetWriter | None = None
        part = in_part = 0
        for batch in cur.fetch_record_batch():
            if writer is None:
                writer = pq.ParquetWriter(folder / f"part-{part:03d}.parquet", batch.schema)
            writer.write_batch(batch)
            in_part += batch.num_rows
            if in_part >= 250_000:
                writer.close()
                writer, part, in_part = None, part + 1, 0
        if writer is not None:
            writer.close()
    return out


def source_template(http: httpx.Client, kind: str, settings: dict[str, object]) -> str:
    """Register a connection of ``kind``; the id of its ``orders`` template."""
    conn = (
        http.post("/api/v1/connections", json={"name": kind, "type": kind, "settings": settings})
        .raise_for_status()
        .json()
    )
    listed = http.get(
        "/api/v1/templates", params={"connectionId": conn["id"], "limit": 200}
    ).json()["data"]
    return str(next(t for t in listed if t["tableName"] == "orders" or t["name"] == "orders")["id"])


def time_reference(case: str, work: Path, lake: Path | None) -> float:
    if case == "parquet":
        return adbc_parquet(work / "reference.parquet")
    if REFERENCES[case] == PSQL_AGAIN:
        return psql_copy(work / "psql-again.csv")
    if REFERENCES[case] == PSQL_FLOAT:
        return psql_copy(work / "psql-float.csv", ("weight",))
    if case == "mysql: csv":
        return mariadb_batch(work / "mariadb.tsv")
    assert lake is not None
    fmt = "csv" if case.endswith("csv") else "parquet"
    return duckdb_files(lake / "orders", work / f"duckdb.{fmt}", fmt)


@dataclass
class Served:
    """A server with the benchmark's connections registered: one template per source kind."""

    server: Server
    http: httpx.Client
    templates: dict[str, str]
    idle_kb: int


@contextlib.contextmanager
def serving(work: Path, kinds: set[str], lake: Path | None) -> Iterator[Served]:
    server = start_server(work / f"data-{secrets.token_hex(3)}")
    pg = {"host": "127.0.0.1", "port": 5432, "database": DB, "user": "postgres"}
    my = {"host": "127.0.0.1", "port": 3306, "database": DB, "user": "root"}
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=60
        ) as http:
            templates = {"postgresql": source_template(http, "postgresql", pg)}
            if "files" in kinds:
                assert lake is not None
                templates["files"] = source_template(http, "files", {"url": lake.as_uri()})
            if "mysql" in kinds:
                templates["mysql"] = source_template(http, "mysql", my)
            yield Served(server, http, templates, rss_kb(server.process.pid))
    finally:
        server.process.terminate()
        server.process.wait(30)


def run_case(on: Served, case: str, fields: list[str]) -> tuple[float, int, int, float, float]:
    """One extraction of ``case``: seconds, rows, peak PSS (KiB), CPU s, the server's span."""
    fmt, extra, split, source, parallelism = CASES[case]
    dialect = "postgres" if case in POSTGRES_DIALECT_CASES else None
    return extract(
        on.http,
        on.templates[source],
        f"b{secrets.token_hex(3)}",
        fmt,
        [*fields, *extra],
        on.server.process.pid,
        split,
        parallelism,
        dialect,
    )


# Issue 19's ratios between cases of one round: (case, the case it is compared with, "time"
# for seconds ÷ the other's seconds, "speed-up" for the other's ÷ this one's).
RELATIVE = {
    "parquet split by region (8)": ("parquet", "time"),
    "csv split by region (8)": ("csv (COPY fast path)", "time"),
    "csv split by region (8, + the float)": ("csv (+ the float)", "time"),
    "parallel 2: csv": ("csv (COPY fast path)", "speed-up"),
    "parallel 2: csv (+ the float)": ("csv (+ the float)", "speed-up"),
    "parallel 2: csv (csvDialect postgres)": ("csv (csvDialect postgres)", "speed-up"),
    "parallel 2: jsonl": ("jsonl", "speed-up"),
    "parallel 2: parquet": ("parquet", "speed-up"),
    "parallel 2: mysql csv": ("mysql: csv", "speed-up"),
}


@dataclass
class Timed:
    """One case's run in one round."""

    secs: float
    psql_s: float  # the round's first psql \copy
    ref_s: float | None
    above_idle_kb: int
    cpu: float


def drop_caches() -> None:
    """Page cache emptied before a round where the benchmark may (root on Linux): a case's
    output otherwise lands in memory an earlier case's filled."""
    os.sync()
    with contextlib.suppress(OSError):
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def run_suite(
    rows: int, cases: list[str], label: str, fresh: bool = False, rounds: int = 1
) -> None:
    """Every case in turn, on one server, or (``fresh``) on a server of its own each, so that
    no case's peak includes what an earlier one left mapped; ``rounds`` times, the cases'
    order reversed every other round (no case always follows the same one), then each
    figure's median over the rounds."""
    work = scratch_dir("egress-bench-")
    kinds = {CASES[case][3] for case in cases}
    lake = parquet_folder(work / "lake") if "files" in kinds else None
    if "mysql" in kinds:
        mysql_orders(rows)
    timed: dict[str, list[Timed]] = {case: [] for case in cases}
    with contextlib.ExitStack() as shared:
        served = None if fresh else shared.enter_context(serving(work, kinds, lake))
        idle = f"{served.idle_kb / 1024:.0f} MiB" if served else "per case, fresh servers"
        for n in range(rounds):
            drop_caches()
            order = cases if n % 2 == 0 else cases[::-1]
            round_label = f"{label}, round {n + 1} of {rounds}" if rounds > 1 else label
            print(f"\n{round_label}: {rows:,} rows, 12 columns; server memory at idle {idle} (PSS)")
            run_round(rows, order, work, lake, served, warm=n == 0, into=timed)
    if rounds > 1:
        print_medians(rows, cases, timed)


def run_round(
    rows: int,
    cases: list[str],
    work: Path,
    lake: Path | None,
    served: Served | None,
    warm: bool,
    into: dict[str, list[Timed]],
) -> None:
    fields = [c.strip() for c in COLUMNS.split(",")]
    print(
        f"{'case':38} {'seconds':>8} {'rows/s':>10} {'vs psql':>8} {'vs ref':>7}"
        f" {'peak PSS':>9} {'> idle':>8} {'CPU s':>7} {'server s':>8}"
    )
    os.sync()
    psql_s = psql_copy(work / "psql.csv")
    psql_label = "psql \\copy CSV"
    print(f"{psql_label:38} {psql_s:8.2f} {rows / psql_s:10,.0f} {'1.00x':>8}")
    for case in cases:
        with contextlib.ExitStack() as own:
            on = served or own.enter_context(serving(work, {CASES[case][3]}, lake))
            if served is None or (warm and case == cases[0]):
                # A fresh server's first run pays its forked worker's one-time costs
                # (imports, sqlglot's first PostgreSQL statement: ~0.1-0.3 s of CPU): run
                # once untimed so that the case is measured warm like the others.
                warm_run = run_case(on, case, fields)
                print(f"{'(warm-up: ' + case + ')':38} {warm_run[0]:8.2f}  CPU s {warm_run[3]:.2f}")
            ref_s = None
            if case in REFERENCES:
                os.sync()
                ref_s = time_reference(case, work, lake)
                print(
                    f"{REFERENCES[case]:38} {ref_s:8.2f} {rows / ref_s:10,.0f}"
                    f" {psql_s / ref_s:7.2f}x {'1.00x':>7}"
                )
            os.sync()  # no earlier output's write-back competes with the timed run
            secs, count, peak, cpu, span = run_case(on, case, fields)
        assert count == rows, (case, count)
        into[case].append(Timed(secs, psql_s, ref_s, peak - on.idle_kb, cpu))
        vs_ref = f"{ref_s / secs:6.2f}x" if ref_s else "-"
        print(
            f"{case:38} {secs:8.2f} {rows / secs:10,.0f} {psql_s / secs:7.2f}x"
            f" {vs_ref:>7} {peak / 1024:5.0f} MiB {(peak - on.idle_kb) / 1024:4.0f} MiB"
            f" {cpu:7.2f} {span:8.2f}",
            flush=True,
        )


def print_medians(rows: int, cases: list[str], timed: dict[str, list[Timed]]) -> None:
    """Each figure's median over the rounds; "vs ref" and the ratio to the related case are
    the medians of each round's own ratio (both timed in the same round)."""
    rounds = len(timed[cases[0]])
    print(f"\nmedians of {rounds} rounds: {rows:,} rows")
    print(
        f"{'case':38} {'seconds':>8} {'vs psql':>8} {'vs ref':>7} {'related':>18}"
        f" {'> idle':>8} {'CPU s':>7}"
    )
    for case in cases:
        runs = timed[case]
        refs = [r.ref_s / r.secs for r in runs if r.ref_s]
        related = "-"
        if case in RELATIVE and RELATIVE[case][0] in timed:
            other, kind = RELATIVE[case]
            pairs = zip(runs, timed[other], strict=True)
            ratios = [
                mine.secs / theirs.secs if kind == "time" else theirs.secs / mine.secs
                for mine, theirs in pairs
            ]
            related = f"{statistics.median(ratios):.2f}x {kind}"
        vs_ref = f"{statistics.median(refs):6.2f}x" if refs else "-"
        print(
            f"{case:38} {statistics.median(r.secs for r in runs):8.2f}"
            f" {statistics.median(r.psql_s / r.secs for r in runs):7.2f}x {vs_ref:>7}"
            f" {related:>18} {statistics.median(r.above_idle_kb for r in runs) / 1024:4.0f} MiB"
            f" {statistics.median(r.cpu for r in runs):7.2f}"
        )


WIDE_TEXT_BYTES = 2000
# Batches bounded by rows only, as before EGRESS_BATCH_BYTES: a bound no batch reaches.
UNBOUNDED_BYTES = str(1 << 40)


def create_wide_tables(rows: int) -> None:
    """``wide`` (id, a float that keeps PostgreSQL off the COPY path, 2 KB of text) in MySQL
    and PostgreSQL ``egress_bench`` databases; created once per row count."""
    body = f"repeat(chr(65 + g %% 26), {WIDE_TEXT_BYTES})"
    url = ADMIN.rsplit("/", 1)[0] + f"/{DB}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DB}"')  # type: ignore[arg-type]
    with psycopg.connect(url, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'wide'").fetchone()
        count = conn.execute("SELECT count(*) FROM wide").fetchone() if have and have[0] else None
        if not count or count[0] != rows:
            print(f"generating {rows:,} wide rows in PostgreSQL …", flush=True)
            conn.execute("DROP TABLE IF EXISTS wide")
            conn.execute("CREATE TABLE wide (id bigint PRIMARY KEY, w float8, body text)")
            conn.execute(
                f"INSERT INTO wide SELECT g, g * 0.5, {body} FROM generate_series(1, %s) g",  # type: ignore[arg-type]
                (rows,),
            )
    my = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    with my.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{DB}`")
        cur.execute(f"USE `{DB}`")
        cur.execute("CREATE TABLE IF NOT EXISTS wide (id BIGINT PRIMARY KEY, w DOUBLE, body TEXT)")
        cur.execute("SELECT count(*) FROM wide")
        if cur.fetchone()[0] != rows:  # type: ignore[index]
            print(f"generating {rows:,} wide rows in MySQL …", flush=True)
            cur.execute("TRUNCATE wide")
            for start in range(0, rows, 10_000):
                cur.executemany(
                    "INSERT INTO wide VALUES (%s, %s, REPEAT(CHAR(65 + %s), %s))",
                    [
                        (g, g * 0.5, g % 26, WIDE_TEXT_BYTES)
                        for g in range(start + 1, min(start + 10_000, rows) + 1)
                    ],
                )
    my.close()


def run_wide(rows: int) -> None:
    """Peak RSS of wide-row extractions with batches bounded by bytes (the default) and not."""
    create_wide_tables(rows)
    print(f"\nwide rows: {rows:,} rows of {WIDE_TEXT_BYTES:,} bytes of text, CSV")
    print(f"{'case':44} {'seconds':>8} {'peak PSS':>9}")
    connections = {
        "mysql": {"host": "127.0.0.1", "port": 3306, "database": DB, "user": "root"},
        "postgresql": {"host": "127.0.0.1", "port": 5432, "database": DB, "user": "postgres"},
    }
    cases = [
        (kind, label, batch_bytes)
        for kind in connections
        for label, batch_bytes in (
            ("EGRESS_BATCH_BYTES 16 MiB (default)", None),
            ("EGRESS_BATCH_BYTES 64 MiB", str(64 << 20)),
            ("rows only (65,536 a batch)", UNBOUNDED_BYTES),
        )
    ]
    for kind, label, batch_bytes in cases:  # a fresh server each: RSS never shrinks back
        work = scratch_dir("egress-bench-wide-")
        env = {"EGRESS_BATCH_BYTES": batch_bytes} if batch_bytes else {}
        server = start_server(work / "data", env)
        try:
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=60
            ) as http:
                conn = (
                    http.post(
                        "/api/v1/connections",
                        json={"name": kind, "type": kind, "settings": connections[kind]},
                    )
                    .raise_for_status()
                    .json()
                )
                listed = http.get(
                    "/api/v1/templates", params={"connectionId": conn["id"], "limit": 200}
                ).json()["data"]
                tpl = next(t for t in listed if t["tableName"] == "wide")
                secs, count, peak, _cpu, _served = extract(
                    http,
                    tpl["id"],
                    f"w{secrets.token_hex(3)}",
                    "csv",
                    ["id", "w", "body"],
                    server.process.pid,
                )
                assert count == rows, (kind, count)
                case = f"{kind}, {label}"
                print(f"{case:44} {secs:8.2f} {peak / 1024:7.0f} MiB", flush=True)
        finally:
            server.process.terminate()
            server.process.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--recreate", action="store_true")
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--scale", type=int, default=4, help="--scaling's row multiplier")
    parser.add_argument("--cases", help="comma-separated subset, e.g. 'parquet,parquet split'")
    parser.add_argument("--wide", type=int, metavar="N", help="only the wide-rows case, N rows")
    parser.add_argument(
        "--fresh", action="store_true", help="a fresh server for each case (memory per case)"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat the cases, then print each figure's median"
    )
    args = parser.parse_args()
    if args.wide:
        run_wide(args.wide)
        return 0
    all_cases = list(CASES)
    create_table(args.rows, args.recreate)
    if args.cases:
        wanted = [w.strip() for w in args.cases.split(",")]
        all_cases = [c for c in all_cases if any(c.startswith(w) for w in wanted)]
    run_suite(args.rows, all_cases, "full", args.fresh, args.rounds)
    if args.scaling:
        large = args.rows * args.scale
        create_table(large, False)
        run_suite(
            large,
            [
                "csv (COPY fast path)",
                "csv (+ the float)",
                "csv split by region (8, + the float)",
                "jsonl",
                "parquet",
                "parquet split by region (8)",
                "files: parquet folder → csv",
            ],
            f"scaling ({args.scale}x rows, fresh server)",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
