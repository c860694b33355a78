"""Server CPU of the PostgreSQL COPY fast path's rendering against a plain COPY of the same
columns, read from /proc for the backend (``COPY (…) TO '/dev/null'``), 1,000,000 rows of
(int, timestamp, timestamptz, date) in years 1-9999. Run it on two checkouts to compare them:

    EGRESS_BENCH_DB=egress_bench_d PYTHONPATH=src .venv/bin/python bench/copy_render_cpu.py

With --orders, the 12 columns of extract_throughput.py's ``orders`` table instead (run that
first, with the same EGRESS_BENCH_DB): psql's plain COPY of them, against the statement the CSV
fast path sends for them (Egress's rendering and its FORCE_QUOTE list) — the server's side of
the default rendering's figure against ``psql \\copy`` —, then ``psql \\copy`` itself writing
each of the two into a file (wall seconds, alternating): how fast the default rendering's bytes
can be written by the reference client, whatever Egress does.

Needs the server on this machine (it reads /proc/<backend pid>/stat) and a superuser (COPY to
a server file).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time

import psycopg

from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.plan import ReadPlan
from egress.query.select import select_statement
from egress.sources.postgresql.columns import copy_sql, force_quote

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
COLUMNS = [
    ColumnInfo("id", "int32"),
    ColumnInfo("ts", "timestamp"),
    ColumnInfo("tz", "timestamptz"),
    ColumnInfo("d", "date"),
]


def _prepare(db: str) -> str:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
            conn.execute(f'CREATE DATABASE "{db}"')
    url = ADMIN.rsplit("/", 1)[0] + f"/{db}"
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_tables WHERE tablename = 'stamps'").fetchone():
            conn.execute(
                "CREATE TABLE stamps (id int PRIMARY KEY, ts timestamp, tz timestamptz, d date)"
            )
            conn.execute(
                "INSERT INTO stamps SELECT i, t, t, t::date FROM (SELECT i, timestamp"
                " '2020-01-01' + i * interval '1.234567 second' AS t"
                " FROM generate_series(1, 1000000) AS i) AS s"
            )
            conn.execute("VACUUM ANALYZE stamps")
    return url


# The orders table's columns as the catalog types them (bench/references.py's COLUMNS).
ORDERS = [
    ColumnInfo("id", "int64"),
    ColumnInfo("order_number", "string"),
    ColumnInfo("customer", "string"),
    ColumnInfo("region", "string"),
    ColumnInfo("quantity", "int32"),
    ColumnInfo("amount", "decimal(12,2)"),
    ColumnInfo("is_gift", "boolean"),
    ColumnInfo("order_date", "date"),
    ColumnInfo("created_at", "timestamptz"),
    ColumnInfo("shipped_at", "timestamp"),
    ColumnInfo("notes", "string"),
    ColumnInfo("ref", "uuid"),
]


def _orders_queries() -> dict[str, tuple[str, str]]:
    """(query, COPY options) of psql's plain read and of the fast path's default rendering."""
    plan = ReadPlan(TableRef("public", "orders"), ORDERS)
    names = ", ".join(f.name for f in ORDERS)
    rendered = select_statement(plan, "postgres", copy_sql).sql
    return {
        "plain, orders (psql's query)": (f"SELECT {names} FROM orders", ""),
        "Egress, orders (default rendering)": (rendered, force_quote(plan)),
    }


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--orders", action="store_true", help="extract_throughput's table")
    args = parser.parse_args()
    url = _prepare(os.environ.get("EGRESS_BENCH_DB", "egress_bench"))
    queries = {
        "plain, 4 columns": ("SELECT id, ts, tz, d FROM stamps", ""),
        "Egress, 4 columns": (
            "SELECT " + ", ".join(copy_sql(f).sql("postgres") for f in COLUMNS) + " FROM stamps",
            "",
        ),
        "plain, the date": ("SELECT d FROM stamps", ""),
        "Egress, the date": (f"SELECT {copy_sql(COLUMNS[3]).sql('postgres')} FROM stamps", ""),
    }
    if args.orders:
        queries = _orders_queries()
    seconds: dict[str, list[float]] = {name: [] for name in queries}
    for _ in range(args.rounds):  # the queries alternate: a shared machine's load moves
        for name, (query, options) in queries.items():
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SET TIME ZONE 'UTC'")
                conn.execute("SET DateStyle = 'ISO, YMD'")
                pid = conn.info.backend_pid
                before = _cpu_s(pid)
                conn.execute(f"COPY ({query}) TO '/dev/null' (FORMAT csv{options})")
                seconds[name].append(_cpu_s(pid) - before)
    for name, spent in seconds.items():
        print(f"{name}: server CPU s {sorted(spent)}", flush=True)
    if args.orders:
        _psql_files(url, queries, args.rounds)


def _psql_files(url: str, queries: dict[str, tuple[str, str]], rounds: int) -> None:
    """``psql \\copy`` of each query into a file, in Egress's session settings (UTC, ISO)."""
    env = {**os.environ, "PGOPTIONS": "-c TimeZone=UTC -c DateStyle=ISO,YMD"}
    walls: dict[str, list[float]] = {name: [] for name in queries}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "out.csv")
        for _ in range(rounds):
            for name, (query, options) in queries.items():
                started = time.perf_counter()
                subprocess.run(
                    ["psql", url, "-q", "-c", f"\\copy ({query}) TO '{out}' (FORMAT csv{options})"],
                    check=True,
                    env=env,
                )
                walls[name].append(time.perf_counter() - started)
                sizes[name] = os.path.getsize(out)
    for name, spent in walls.items():
        print(
            f"psql \\copy into a file, {name}: {sizes[name]:,} bytes, wall s"
            f" {sorted(round(w, 2) for w in spent)} (median {statistics.median(spent):.2f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
