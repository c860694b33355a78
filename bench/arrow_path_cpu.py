"""Egress's Arrow path to Parquet in process against the raw ADBC → Parquet loop that
``extract_throughput.py`` times as its reference, on the same table and columns, alternating:
wall seconds, this process's user and system CPU, and the database backend's CPU. No server, no
queue, no HTTP: what is left of a gap here is the path's own work (the source's conform and
infinity checks, the read-ahead thread, the writer's choices, sha256, the storage writer).

    EGRESS_BENCH_DB=egress_bench_q PYTHONPATH=src .venv/bin/python bench/arrow_path_cpu.py \\
        [--rounds 4] [--allocator jemalloc-0|default]

``extract_throughput.py`` creates the table (run it once with the same EGRESS_BENCH_DB).
``--allocator jemalloc-0`` (the default) is what ``egress serve`` sets up (arrow_memory.py:
freed pages returned at once); ``default`` leaves pyarrow's own pool.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from egress.arrow_memory import release_promptly
from egress.domain.catalog import TableRef
from egress.domain.plan import ReadPlan
from egress.engine.read_ahead import read_ahead
from egress.settings import DEFAULT_BATCH_BYTES, DEFAULT_BATCH_ROWS, Settings
from egress.sinks.file import FileSink
from egress.sources.arrow_types import arrow_schema, byte_slices
from egress.sources.policy import SourcePolicy
from egress.sources.postgresql.settings import PostgresSettings
from egress.sources.postgresql.source import PostgresSource
from egress.storage import Storage
from references import COLUMNS, DB, DB_URL, adbc_parquet
from rounds import Figures, alternated, print_medians
from serving import proc_cpu_s


def _backends() -> dict[int, float]:
    """CPU seconds so far of every backend connected to the benchmark's database."""
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        me = conn.info.backend_pid
        pids = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> %s", (DB, me)
        ).fetchall()
    seen = {}
    for (pid,) in pids:
        with contextlib.suppress(OSError):
            seen[pid] = proc_cpu_s(pid)
    return seen


def measured(run: Callable[[], object]) -> Figures:
    """``run`` timed, its backend's CPU read while it still runs (it ends with the run)."""
    backend: dict[int, float] = {}
    done = False

    def watch() -> None:  # the session's backend exits with it: sample it as it goes
        while not done:
            for pid, cpu in _backends().items():
                backend[pid] = max(cpu, backend.get(pid, 0.0))
            time.sleep(0.05)

    before = set(_backends())
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0, c0 = time.perf_counter(), os.times()
    run()
    wall, c1 = time.perf_counter() - t0, os.times()
    done = True
    watcher.join()
    return {
        "wall": wall,
        "user": c1.user - c0.user,
        "sys": c1.system - c0.system,
        "backend": sum(cpu for pid, cpu in backend.items() if pid not in before),
    }


def egress_parquet(work: Path) -> None:
    """The runner's single-stream Arrow path: the source's batches (read, conformed, checked on
    the read-ahead thread) into the Parquet writer through the run's FileSink and the local
    store."""
    settings = PostgresSettings(host="127.0.0.1", port=5432, database=DB, user="postgres")
    src = PostgresSource(settings, {}, SourcePolicy.from_settings(Settings(data_dir=work)))
    try:
        fields = src.describe(f"SELECT {COLUMNS} FROM orders")
        plan = ReadPlan(table=TableRef("public", "orders"), fields=fields, columns=fields)
        storage = Storage((work / "files").as_uri())
        sink = FileSink(
            storage, "k/out.parquet", "parquet", "none", arrow_schema(fields), 8 << 20, "o"
        )
        batches = (
            piece
            for batch in src.read(plan, DEFAULT_BATCH_ROWS, DEFAULT_BATCH_BYTES)
            for piece in byte_slices(batch, DEFAULT_BATCH_BYTES)
        )
        for batch in read_ahead([batches], contextlib.nullcontext):
            sink.write(batch)
        sink.close()
    finally:
        src.close()
        shutil.rmtree(work / "files", ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--allocator", choices=["jemalloc-0", "default"], default="jemalloc-0")
    args = parser.parse_args()
    if args.allocator == "jemalloc-0":
        release_promptly()
    work = Path(tempfile.mkdtemp(prefix="egress-arrow-cpu-"))
    kinds: dict[str, Callable[[], object]] = {
        "egress": lambda: egress_parquet(work),
        "reference": lambda: adbc_parquet(work / "ref.parquet"),
    }
    try:
        kinds["egress"]()  # warm-up: imports, the first statement's compilation
        runs = alternated(list(kinds), args.rounds, lambda kind: measured(kinds[kind]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_medians(runs)
    pairs = zip(runs["egress"], runs["reference"], strict=True)
    ratios = [r["wall"] / e["wall"] for e, r in pairs]
    print(f"egress speed vs reference: {statistics.median(ratios):.2f}x by the median of pairs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
