"""Server CPU of the PostgreSQL COPY fast path's rendering against a plain COPY of the same
columns, read from /proc for the backend (``COPY (…) TO '/dev/null'``), 1,000,000 rows of
(int, timestamp, timestamptz, date) in years 1-9999. Run it on two checkouts to compare them:

    EGRESS_BENCH_DB=egress_bench_d PYTHONPATH=src .venv/bin/python bench/copy_render_cpu.py

Needs the server on this machine (it reads /proc/<backend pid>/stat) and a superuser (COPY to
a server file).
"""

from __future__ import annotations

import argparse
import os

import psycopg

from egress.domain.catalog import ColumnInfo
from egress.sources.postgresql.columns import copy_sql

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


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = _prepare(os.environ.get("EGRESS_BENCH_DB", "egress_bench"))
    queries = {
        "plain, 4 columns": "SELECT id, ts, tz, d FROM stamps",
        "Egress, 4 columns": "SELECT "
        + ", ".join(copy_sql(f).sql("postgres") for f in COLUMNS)
        + " FROM stamps",
        "plain, the date": "SELECT d FROM stamps",
        "Egress, the date": f"SELECT {copy_sql(COLUMNS[3]).sql('postgres')} FROM stamps",
    }
    for name, query in queries.items():
        seconds = []
        for _ in range(args.rounds):
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SET TIME ZONE 'UTC'")
                conn.execute("SET DateStyle = 'ISO, YMD'")
                pid = conn.info.backend_pid
                before = _cpu_s(pid)
                conn.execute(f"COPY ({query}) TO '/dev/null' (FORMAT csv)")
                seconds.append(_cpu_s(pid) - before)
        print(f"{name}: server CPU s per 1M rows {sorted(seconds)}", flush=True)


if __name__ == "__main__":
    main()
