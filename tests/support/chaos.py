"""Crash harness: real `egress worker` processes on PostgreSQL, killed and frozen at random.

Used by the CI crash test (small) and bench/chaos.py (long). It checks what a user relies on:
every execution ends COMPLETED once, every published file holds exactly the source's rows,
storage holds no file that no run references, and a worker frozen past its lease (a zombie)
publishes nothing when it wakes up.
"""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa
from cryptography.fernet import Fernet

from egress.container import Container
from egress.db.migrate import upgrade
from egress.db.tables import runs
from egress.domain.paging import PageRequest
from egress.settings import Settings
from tests.support.factories import submitted_configuration

TERMINAL = {"COMPLETED", "COMPLETED_NO_DATA", "FAILED", "CANCELLED"}


@dataclass
class ChaosConfig:
    metadata_url: str  # postgresql+psycopg://…
    source_url: str  # postgresql://… (libpq) of the database holding the orders table
    work_dir: Path
    workers: int = 3
    executions: int = 6
    configurations: int = 3
    rows: int = 50_000
    kill_interval_s: tuple[float, float] = (1.0, 3.0)
    freeze_every: int = 3  # every Nth disruption freezes a worker past its lease instead
    lease_s: float = 2.0
    timeout_s: float = 180.0
    seed: int = 7


@dataclass
class ChaosReport:
    executions: int
    kills: int
    freezes: int
    duration_s: float
    attempts_total: int
    zombie_aborts: int
    problems: list[str] = field(default_factory=list)


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


def seed_source(source_url: str, rows: int) -> None:
    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS orders")
        conn.execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY, region text, amount numeric(12,2),"
            " created_at timestamptz)"
        )
        conn.execute(
            "INSERT INTO orders SELECT g, (ARRAY['EU','NA','APAC','LATAM'])[1 + g %% 4],"
            " (g %% 1000) / 10.0, timestamptz '2026-01-01' + g * interval '1 second'"
            " FROM generate_series(1, %s) g",
            (rows,),
        )


def spawn_worker(name: str, env: dict[str, str], work_dir: Path) -> _Proc:
    log = work_dir / f"{name}.log"
    with log.open("ab") as fh:
        popen = subprocess.Popen(
            [sys.executable, "-m", "egress.cli.main", "worker", "--name", name],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    return _Proc(name, popen, log)


def _busy_pids(c: Container) -> set[int]:
    """PIDs of workers holding an IN_PROGRESS run (processId is host:pid:name-slot)."""
    with c.engine.connect() as conn:
        ids = conn.execute(
            sa.select(runs.c.process_id).where(runs.c.status == "IN_PROGRESS")
        ).scalars()
        return {int(pid.split(":")[1]) for pid in ids if pid}


def run_chaos(cfg: ChaosConfig) -> ChaosReport:
    rnd = random.Random(cfg.seed)
    storage_dir = cfg.work_dir / "files"
    key = Fernet.generate_key().decode()
    settings = Settings(
        data_dir=cfg.work_dir / "data",
        database_url=cfg.metadata_url,
        storage_url=storage_dir.as_uri(),
        secret_key=key,
    )
    upgrade(cfg.metadata_url)
    seed_source(cfg.source_url, cfg.rows)
    c = Container.build(settings)
    ws = c.workspaces.ensure_workspace("chaos")
    conninfo = psycopg.conninfo.conninfo_to_dict(cfg.source_url)
    conn = c.connections.create(
        ws,
        "source",
        "postgresql",
        {
            "host": str(conninfo.get("host", "127.0.0.1")),
            "port": int(conninfo.get("port", 5432)),
            "database": str(conninfo["dbname"]),
            "user": str(conninfo.get("user", "postgres")),
        },
        None,
    )
    c.services.catalog.discover(ws, conn.id)
    template = next(
        t
        for t in c.templates.list_page(ws, conn.id, PageRequest(page=0, limit=1000)).items
        if t.name == "public.orders"
    )
    config_ids = []
    for i in range(cfg.configurations):
        record_id = submitted_configuration(
            c,
            ws,
            template.id,
            f"chaos_{i}",
            format="csv" if i % 2 == 0 else "parquet",
            destination={"type": "storage", "path": "chaos"},
            file_name_pattern="{configurationName}_{executionId}_v{run}.{ext}",
        )
        config_ids.append(record_id)

    env = {
        **os.environ,
        "EGRESS_DATABASE_URL": cfg.metadata_url,
        "EGRESS_STORAGE_URL": storage_dir.as_uri(),
        "EGRESS_SECRET_KEY": key,
        "EGRESS_DATA_DIR": str(cfg.work_dir / "data"),
        "EGRESS_LEASE_S": str(cfg.lease_s),
        "EGRESS_HEARTBEAT_S": str(cfg.lease_s / 6),
        "EGRESS_POLL_S": "0.2",
        "EGRESS_MAX_ATTEMPTS": "50",
        "EGRESS_WORKER_CONCURRENCY": "2",
        "EGRESS_SHUTDOWN_GRACE_S": "0",
        "EGRESS_BATCH_ROWS": "8192",
    }
    procs = [spawn_worker(f"w{i}", env, cfg.work_dir) for i in range(cfg.workers)]
    started = time.monotonic()
    pairs = []
    for i in range(cfg.executions):
        cfg_id = config_ids[i % len(config_ids)]
        execution, _ = c.services.executions.trigger(ws, cfg_id, {})
        pairs.append((cfg_id, execution.id))

    kills = freezes = disruptions = 0
    next_hit = time.monotonic() + rnd.uniform(*cfg.kill_interval_s)
    while True:
        latest = [c.executions.get(ws, cid, eid).latest.status.value for cid, eid in pairs]
        if all(s in TERMINAL for s in latest):
            break
        if time.monotonic() - started > cfg.timeout_s:
            break
        if time.monotonic() >= next_hit:
            busy = _busy_pids(c)
            candidates = [i for i, p in enumerate(procs) if p.popen.pid in busy]
            if not candidates:
                time.sleep(0.05)
                continue  # hit a worker in the middle of a run, not an idle one
            victim = rnd.choice(candidates)
            proc = procs[victim]
            proc.popen.send_signal(signal.SIGSTOP)
            if proc.popen.pid not in _busy_pids(c):
                proc.popen.send_signal(signal.SIGCONT)  # its run ended in between: try again
                continue
            disruptions += 1
            if cfg.freeze_every and disruptions % cfg.freeze_every == 0:
                # A zombie: frozen past its lease, then woken while others own its runs.
                time.sleep(cfg.lease_s * 2.5)
                proc.popen.send_signal(signal.SIGCONT)
                freezes += 1
            else:
                proc.popen.kill()
                proc.popen.wait()
                procs[victim] = spawn_worker(proc.name, env, cfg.work_dir)
                kills += 1
            next_hit = time.monotonic() + rnd.uniform(*cfg.kill_interval_s)
        time.sleep(0.1)
    duration = time.monotonic() - started
    for proc in procs:
        proc.popen.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait()

    report = ChaosReport(
        executions=len(pairs),
        kills=kills,
        freezes=freezes,
        duration_s=duration,
        attempts_total=0,
        zombie_aborts=sum(
            (cfg.work_dir / f"w{i}.log").read_text(errors="replace").count("committed nothing")
            for i in range(cfg.workers)
        ),
    )
    _verify(c, ws, pairs, cfg.rows, storage_dir, report)
    c.engine.dispose()
    return report


def _verify(
    c: Container,
    ws: str,
    pairs: list[tuple[str, str]],
    rows: int,
    storage_dir: Path,
    report: ChaosReport,
) -> None:
    expected_ids = rows * (rows + 1) // 2
    referenced: set[str] = set()
    for cid, eid in pairs:
        execution = c.executions.get(ws, cid, eid)
        report.attempts_total += sum(r.attempt for r in execution.runs)
        if [r.status.value for r in execution.runs] != ["COMPLETED"]:
            report.problems.append(f"{eid}: runs {[r.status.value for r in execution.runs]}")
            continue
        run = execution.runs[0]
        if run.record_count != rows or len(run.files) != 1:
            report.problems.append(f"{eid}: {run.record_count} records, {len(run.files)} files")
            continue
        f = run.files[0]
        referenced.add(f.storage_key)
        if run.manifest_key:
            referenced.add(run.manifest_key)
        data = (storage_dir / f.storage_key).read_bytes()
        if f.storage_key.endswith(".csv"):
            table = pacsv.read_csv(io.BytesIO(data))
        else:
            table = pq.read_table(io.BytesIO(data))
        ids = table.column("id").to_pylist()
        if len(ids) != rows or len(set(ids)) != rows or sum(ids) != expected_ids:
            report.problems.append(f"{eid}: file {f.storage_key} does not hold the source's ids")
    on_disk = {str(p.relative_to(storage_dir)) for p in storage_dir.rglob("*") if p.is_file()}
    stray = sorted(on_disk - referenced)
    if stray:
        report.problems.append(f"unreferenced objects in storage: {stray}")
    missing = sorted(referenced - on_disk)
    if missing:
        report.problems.append(f"referenced files missing from storage: {missing[:10]}")
