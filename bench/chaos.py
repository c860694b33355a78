"""Long crash test: 3 `egress worker` processes on PostgreSQL, 50 executions of 200k rows,
a worker killed (kill -9) or frozen past its lease every few seconds until every run ends.

    .venv/bin/python bench/chaos.py [--executions 50] [--rows 200000] [--workers 3]

Exits non-zero if any invariant is broken (see tests/support/chaos.py for the checks).
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serving import scratch_dir
from tests.support.chaos import ChaosConfig, run_chaos

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _database(prefix: str) -> str:
    name = f"{prefix}_{secrets.token_hex(3)}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executions", type=int, default=50)
    parser.add_argument("--configurations", type=int, default=10)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--lease", type=float, default=3.0)
    args = parser.parse_args()
    meta, source = _database("chaos_meta"), _database("chaos_src")
    base = ADMIN.rsplit("/", 1)[0]
    try:
        report = run_chaos(
            ChaosConfig(
                metadata_url=f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{meta}",
                source_url=f"{base}/{source}",
                work_dir=scratch_dir("egress-chaos-"),
                workers=args.workers,
                executions=args.executions,
                configurations=args.configurations,
                rows=args.rows,
                kill_interval_s=(2.0, 5.0),
                freeze_every=4,
                lease_s=args.lease,
                timeout_s=1800,
            )
        )
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            for name in (meta, source):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
    print(f"executions:        {report.executions}")
    print(f"kills / freezes:   {report.kills} / {report.freezes}")
    print(f"attempts in total: {report.attempts_total}")
    print(f"zombie aborts:     {report.zombie_aborts}")
    print(f"duration:          {report.duration_s:.1f} s")
    print("invariants:        " + ("OK" if not report.problems else "BROKEN"))
    for problem in report.problems:
        print(f"  - {problem}")
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
