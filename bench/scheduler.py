"""The scheduler's cost and its firing delay, on PostgreSQL.

    .venv/bin/python bench/scheduler.py [--configurations 10000] [--burst 200] [--only burst|cpu]

1. CPU: ``--configurations`` submitted configurations with one hourly schedule each (spread
   over the minutes of the hour), one hour of simulated time through the injected clock, a
   round every EGRESS_SCHEDULER_INTERVAL_S (0.5 s) of it: the scheduler process's CPU seconds
   for that hour (the database's own CPU is not counted), and the firings it made.
2. Delay at real speed: ``--burst`` schedules due in the same minute, one scheduler loop on
   the real clock; delay = execution created - slot due, p50/p99 (target: p99 under 1 s), by
   its ``created_at`` and by when it became visible to a reader (polled every 20 ms).
"""

from __future__ import annotations

import argparse
import secrets
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serving import scratch_dir

from egress.container import Container
from egress.db.migrate import upgrade
from egress.db.tables import executions, extraction_configurations, schedules
from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.clock import new_id
from egress.domain.schedules import next_fire
from egress.settings import Settings

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
UTC_ZONE = __import__("zoneinfo").ZoneInfo("UTC")


class Clock:
    def __init__(self, now: datetime | None) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now if self.now is not None else datetime.now(UTC)


def _database() -> tuple[str, str]:
    name = f"bench_sched_{secrets.token_hex(3)}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    base = ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return name, f"{base}/{name}"


def _drop(name: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def _container(url: str, work: Path, clock: Clock) -> Container:
    settings = Settings(
        data_dir=work / "data", database_url=url, files_roots=str(work), secret_key=None
    )
    return Container.build(settings, clock=clock)


def _configurations(c: Container, work: Path, count: int, cron: Any, now: datetime) -> None:
    """``count`` submitted configurations, each with one schedule ``cron(i)``, inserted in
    bulk (through the service, setting up 10,000 would take longer than the benchmark)."""
    source = work / "src.db"
    with sqlite3.connect(source) as db:
        db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)")
    ws = c.workspaces.ensure_workspace("bench")
    conn = c.connections.create(ws, f"src{new_id()[:8]}", "sqlite", {"path": str(source)}, None)
    tpl = c.templates.create_custom(
        ws, conn.id, "t", TableRef("main", "t"), [ColumnInfo("id", "int64", False)], [], None, None
    )
    cfg_rows, schedule_rows = [], []
    for i in range(count):
        cfg_id = new_id()
        cfg_rows.append(
            {
                "id": cfg_id,
                "workspace_id": ws,
                "name": f"c{new_id()[:8]}",
                "template_id": tpl.id,
                "format": "csv",
                "compression": "none",
                "destination": {"type": "storage", "path": ""},
                "status": "SUBMITTED",
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        expr = cron(i)
        schedule_rows.append(
            {
                "id": new_id(),
                "workspace_id": ws,
                "configuration_id": cfg_id,
                "position": 0,
                "cron": expr,
                "timezone": "UTC",
                "enabled": True,
                "next_due_at": next_fire(expr, UTC_ZONE, now),
                "created_at": now,
            }
        )
    with c.engine.begin() as db:
        for start in range(0, count, 1000):
            db.execute(extraction_configurations.insert(), cfg_rows[start : start + 1000])
            db.execute(schedules.insert(), schedule_rows[start : start + 1000])


def cpu_per_hour(count: int) -> None:
    name, url = _database()
    try:
        upgrade(url)
        work = scratch_dir("egress-bench-sched-")
        start = datetime(2026, 6, 1, tzinfo=UTC)
        clock = Clock(start)
        c = _container(url, work, clock)
        _configurations(c, work, count, lambda i: f"{i % 60} * * * *", start)
        scheduler = c.scheduler_service()
        step = timedelta(seconds=c.settings.scheduler_interval_s)
        fired = rounds = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        while clock.now is not None and clock.now < start + timedelta(hours=1):
            clock.now += step
            fired += len(scheduler.run_once())
            rounds += 1
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        print(
            f"{count} configurations, 1 simulated hour, {rounds} rounds: {fired} firings; "
            f"scheduler CPU {cpu:.1f} s per simulated hour ({1000 * cpu / max(fired, 1):.2f} ms "
            f"per firing), wall {wall:.1f} s"
        )
        c.engine.dispose()
    finally:
        _drop(name)


def burst_delay(count: int) -> None:
    name, url = _database()
    try:
        upgrade(url)
        work = scratch_dir("egress-bench-sched-")
        c = _container(url, work, Clock(None))
        now = datetime.now(UTC)
        _configurations(c, work, count, lambda i: "* * * * *", now)
        due = next_fire("* * * * *", UTC_ZONE, now)
        loop = c.scheduler()
        loop.start()
        deadline = due + timedelta(seconds=60)
        # When each execution became visible (committed), polled every 20 ms: a round's slots
        # share the created_at the round read the clock at, before it wrote them.
        seen: dict[str, float] = {}
        created: dict[str, float] = {}
        while datetime.now(UTC) < deadline and len(seen) < count:
            time.sleep(0.02)
            with c.engine.connect() as db:
                rows = db.execute(
                    sa.select(executions.c.id, executions.c.created_at).where(
                        executions.c.due_at == due
                    )
                ).all()
            at = (datetime.now(UTC) - due).total_seconds()
            for r in rows:
                seen.setdefault(r.id, at)
                created[r.id] = (r.created_at - due).total_seconds()
        loop.stop(10)
        for label, values in (("created_at", created), ("visible", seen)):
            delays = sorted(values.values())
            p99 = delays[min(len(delays) - 1, int(0.99 * len(delays)))]
            print(
                f"{count} schedules due at {due:%H:%M}: {len(delays)} fired; due -> {label} "
                f"p50 {statistics.median(delays):.3f} s, p99 {p99:.3f} s, max {delays[-1]:.3f} s"
            )
        c.engine.dispose()
    finally:
        _drop(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configurations", type=int, default=10_000)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--only", choices=["burst", "cpu"], help="one of the two measures")
    args = parser.parse_args()
    if args.only != "cpu":
        burst_delay(args.burst)
    if args.only != "burst":
        cpu_per_hour(args.configurations)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
