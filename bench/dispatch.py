"""Dispatch latency and throughput: 4 `egress worker` processes on PostgreSQL metadata.

    .venv/bin/python bench/dispatch.py [--executions 1000] [--workers 4] [--idle-samples 100]

EGRESS_BENCH_DB=name: the metadata and source databases are name_meta and name_src (else
random names), so concurrent benchmarks stay apart.

Phase 1 (idle): one trigger at a time while every worker is idle; trigger → IN_PROGRESS is
the run's started_at minus its queued_at (both written by this machine's clock).
Phase 2 (burst): --executions triggers of a tiny extraction (each on its own configuration, so
none waits ON_HOLD), then executions completed per second and trigger → IN_PROGRESS under load.
Phase 3 (drain): the same executions queued while the workers are stopped (most wait ON_HOLD
behind the workspace's limit), then timed to the last; CPU per execution of the workers and of
the PostgreSQL backends of both databases, from /proc.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import sys
import time
from pathlib import Path

import psycopg
import sqlalchemy as sa
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serving import scratch_dir
from tests.support.chaos import spawn_worker

from egress.container import Container
from egress.db.migrate import upgrade
from egress.db.tables import runs
from egress.domain.paging import PageRequest
from egress.settings import Settings

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TERMINAL = ("COMPLETED", "COMPLETED_NO_DATA", "FAILED", "CANCELLED")


def _database(role: str) -> str:
    """A fresh database; named after EGRESS_BENCH_DB when set (a known name lets one set
    per-database settings such as ``log_statement`` beforehand; a leftover is dropped)."""
    bench = os.environ.get("EGRESS_BENCH_DB")
    name = f"{bench}_{role}" if bench else f"dispatch_{role}_{secrets.token_hex(3)}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return name


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _latencies_ms(c: Container) -> list[float]:
    """trigger → IN_PROGRESS of every started run, in trigger order."""
    with c.engine.connect() as conn:
        rows = conn.execute(
            sa.select(runs.c.queued_at, runs.c.started_at)
            .where(runs.c.started_at.is_not(None))
            .order_by(runs.c.queued_at)
        ).all()
    return [(r.started_at - r.queued_at).total_seconds() * 1000 for r in rows]


def _cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes have used so far, from /proc."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _backend_pids(databases: tuple[str, ...]) -> list[int]:
    """PIDs of the PostgreSQL backends connected to these databases (the metadata and the
    source; this process's own connections are among them, idle while the drain runs)."""
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s)", [list(databases)]
        ).fetchall()
    return [pid for (pid,) in rows]


def _backends_cpu_s(pids: list[int]) -> float:
    """CPU seconds of those backends still alive (a backend that exits takes its CPU along)."""
    return _cpu_s([pid for pid in pids if Path(f"/proc/{pid}").exists()])


def _wait_all_done(c: Container, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with c.engine.connect() as conn:
            left = conn.execute(
                sa.select(sa.func.count()).where(runs.c.status.not_in(TERMINAL))
            ).scalar_one()
        if left == 0:
            return
        time.sleep(0.02)
    raise TimeoutError("runs still unfinished")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--idle-samples", type=int, default=100)
    args = parser.parse_args()
    meta, source = _database("meta"), _database("src")
    base = ADMIN.rsplit("/", 1)[0]
    meta_url = f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{meta}"
    work = scratch_dir("egress-dispatch-")
    key = Fernet.generate_key().decode()
    procs = []
    try:
        with psycopg.connect(f"{base}/{source}", autocommit=True) as conn:
            conn.execute("CREATE TABLE tiny (id int PRIMARY KEY, name text)")
            conn.execute("INSERT INTO tiny SELECT g, 'n' || g FROM generate_series(1, 10) g")
        upgrade(meta_url)
        settings = Settings(
            data_dir=work / "data",
            database_url=meta_url,
            storage_url=(work / "files").as_uri(),
            secret_key=key,
        )
        c = Container.build(settings)
        ws = c.workspaces.ensure_workspace("bench")
        conn_rec = c.connections.create(
            ws,
            "src",
            "postgresql",
            {"host": "127.0.0.1", "port": 5432, "database": source, "user": "postgres"},
            None,
        )
        c.services.catalog.discover(ws, conn_rec.id)
        template = c.templates.list_page(ws, conn_rec.id, PageRequest(0, 10)).items[0]
        total = 1 + args.idle_samples + args.executions
        config_ids = []
        for i in range(total):
            record = c.services.configurations.create(
                ws,
                {
                    "name": f"tiny_{i}",
                    "template_id": template.id,
                    "fields": None,
                    "format": "csv",
                    "compression": "none",
                    "destination": {"type": "storage", "path": "d"},
                    "file_name_pattern": None,
                    "start_date": None,
                    "end_date": None,
                },
            )
            c.configurations.update(ws, record.id, {"status": "SUBMITTED"})
            config_ids.append(record.id)
        env = {
            **os.environ,
            "EGRESS_DATABASE_URL": meta_url,
            "EGRESS_STORAGE_URL": (work / "files").as_uri(),
            "EGRESS_SECRET_KEY": key,
            "EGRESS_DATA_DIR": str(work / "data"),
            "EGRESS_WORKER_CONCURRENCY": "2",
            "EGRESS_LOG_LEVEL": "WARNING",
        }
        procs = [spawn_worker(f"w{i}", env, work) for i in range(args.workers)]
        time.sleep(3)  # let every worker connect and LISTEN before measuring idle latency

        # A warm-up run first (not a sample): on a slow machine the workers may still be
        # starting after the sleep, and the first run would wait for them (p99 of 1.3 s).
        c.services.executions.trigger(ws, config_ids[0], {})
        _wait_all_done(c, 600)
        for cfg_id in config_ids[1 : args.idle_samples + 1]:
            c.services.executions.trigger(ws, cfg_id, {})
            _wait_all_done(c, 600)
        idle = _latencies_ms(c)[1:]

        started = time.monotonic()
        for cfg_id in config_ids[1 + args.idle_samples :]:
            c.services.executions.trigger(ws, cfg_id, {})
        trigger_s = time.monotonic() - started
        _wait_all_done(c, 600)
        loaded = _latencies_ms(c)[1 + len(idle) :]

        # Drain: queue every execution while the workers are frozen, then time the drain alone.
        for p in procs:
            p.popen.send_signal(signal.SIGSTOP)
        for cfg_id in config_ids[1 + args.idle_samples :]:
            c.services.executions.trigger(ws, cfg_id, {})
        cpu_before = _cpu_s([p.popen.pid for p in procs])
        backends = _backend_pids((meta, source))
        pg_before = _backends_cpu_s(backends)
        started = time.monotonic()
        for p in procs:
            p.popen.send_signal(signal.SIGCONT)
        _wait_all_done(c, 600)
        drain_s = time.monotonic() - started
        drain_cpu = _cpu_s([p.popen.pid for p in procs]) - cpu_before
        pg_cpu = _backends_cpu_s(backends) - pg_before
        print(f"workers: {args.workers} processes x 2 slots, PostgreSQL metadata, LISTEN/NOTIFY")
        print(
            f"idle   trigger→IN_PROGRESS  median {statistics.median(idle):7.1f} ms"
            f"   p99 {_pct(idle, 99):7.1f} ms   (n={len(idle)})"
        )
        print(
            f"burst  trigger→IN_PROGRESS  median {statistics.median(loaded):7.1f} ms"
            f"   p99 {_pct(loaded, 99):7.1f} ms   (n={len(loaded)};"
            f" {args.executions / trigger_s:.0f} triggers/s from one client)"
        )
        print(
            f"drain  {args.executions} queued executions in {drain_s:.1f} s"
            f" = {args.executions / drain_s:.1f} executions/s;"
            f" workers' CPU {drain_cpu:.1f} s = {drain_cpu / args.executions * 1000:.1f} ms each;"
            f" PostgreSQL backends' CPU {pg_cpu:.1f} s = {pg_cpu / args.executions * 1000:.1f} ms"
            f" each; load average {os.getloadavg()[0]:.1f}"
        )
        c.engine.dispose()
    finally:
        for p in procs:
            p.popen.send_signal(signal.SIGTERM)
        for p in procs:
            p.popen.wait(timeout=30)
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            for name in (meta, source):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
