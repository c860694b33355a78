"""Where a parallel read's COPY time goes: the single ``COPY`` (``PostgresSource.copy_rows``)
against ``parallelism: N`` in parts (``copy_partitions`` + ``engine/parts.write_parts``), in
process (no server, no HTTP, no hashing sink: a local file), in alternating order, with CPU
accounting per process and each part's timeline.

Per run: wall time; Egress's CPU (this process, user+sys); each PostgreSQL backend's CPU
(``/proc/<pid>/stat`` of its session's backend, read before the session closes); for the
parts, how long setting them up took (second session, bounds, exported snapshot), each part's
start, end and thread CPU, and the tail (from the last part's end to the file's: what the
follower still copies from the spill files). "floor" is the run's CPU spread over every core:
no schedule of that work can be shorter on an idle machine.

    EGRESS_BENCH_DB=egress_bench_D PYTHONPATH=src .venv/bin/python bench/parallel_cpu.py \
        [--rounds 4] [--native] [--parts 2] [--sinks buffered,blocks]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from egress.domain.catalog import TableRef
from egress.domain.plan import ReadPlan
from egress.engine.control import RunControl
from egress.engine.parts import write_parts
from egress.settings import Settings
from egress.sinks.file import FileSink
from egress.sources.arrow_types import arrow_schema
from egress.sources.base import FilePart, Rendering
from egress.sources.policy import SourcePolicy
from egress.sources.postgresql.settings import PostgresSettings
from egress.sources.postgresql.source import PostgresSource
from egress.storage import Storage
from references import COLUMNS, DB
from serving import proc_cpu_s


@dataclass
class Measured:
    wall: float = 0.0
    egress: float = 0.0
    backends: list[float] = field(default_factory=list)
    timeline: list[str] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.egress + sum(self.backends)


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def source(work: Path) -> PostgresSource:
    settings = PostgresSettings(host="127.0.0.1", port=5432, database=DB, user="postgres")
    return PostgresSource(settings, {}, SourcePolicy.from_settings(Settings(data_dir=work)))


def plan_of(src: PostgresSource, parallelism: int) -> ReadPlan:
    fields = src.describe(f"SELECT {COLUMNS} FROM orders")  # opens the kept idle session
    return ReadPlan(
        table=TableRef("public", "orders"),
        fields=fields,
        columns=fields,
        parallelism=parallelism,
        partition_key="id" if parallelism > 1 else None,
    )


def _rendering(native: bool) -> Rendering:
    return Rendering.POSTGRES_CSV if native else Rendering.CSV


def single(work: Path, native: bool) -> Measured:
    src = source(work)
    plan = plan_of(src, 1)
    with src._idle.use() as conn:  # the session copy_rows will use, already open
        pid = conn.info.backend_pid
    m, pg0 = Measured(), proc_cpu_s(pid)
    c0, t0 = own_cpu(), time.perf_counter()
    with (work / "out.csv").open("wb") as out:
        src.copy_rows(plan, out, lambda _rows: None, _rendering(native))
    m.wall, m.egress = time.perf_counter() - t0, own_cpu() - c0
    m.backends = [proc_cpu_s(pid) - pg0]
    src.close()
    return m


def parallel(work: Path, native: bool, parts: int, sink: str | None = None) -> Measured:
    src = source(work)
    plan = plan_of(src, parts)
    m = Measured()
    c0, t0 = own_cpu(), time.perf_counter()
    made = src.copy_partitions(plan, _rendering(native))
    m.timeline.append(f"setup {(time.perf_counter() - t0) * 1000:.0f} ms")
    m.backends = [0.0] * len(made)
    timed = [_timed(i, part, m, t0) for i, part in enumerate(made)]
    if sink is None:
        with (work / "out.csv").open("wb") as out:
            write_parts(out, timed, "none", RunControl())
    else:  # as the runner writes the file: hashed, into the local store
        storage = Storage((work / "files").as_uri())
        schema = arrow_schema(plan.fields)
        blocks = sink == "blocks"
        into = FileSink(
            storage, "k/out.csv", "csv", "none", schema, 8 << 20, "out.csv", blocks=blocks
        )
        into.close(write_parts(into.stream, timed, "none", RunControl()))
        shutil.rmtree(work / "files", ignore_errors=True)
    m.wall, m.egress = time.perf_counter() - t0, own_cpu() - c0
    m.timeline.append(f"tail {(m.wall - max(m.ends)) * 1000:.0f} ms")
    src.close()
    return m


def _timed(index: int, part: FilePart, m: Measured, t0: float) -> FilePart:
    """``part`` with its timeline and its backend's CPU recorded."""
    conn = part.close.__self__  # type: ignore[attr-defined]  # the session's close
    pid = conn.info.backend_pid
    pg0 = proc_cpu_s(pid)

    def write(out: BinaryIO, first: bool, progress: Callable[[int], None]) -> int:
        start, cpu = time.perf_counter(), time.thread_time()
        rows = part.write(out, first, progress)
        end = time.perf_counter() - t0
        m.ends.append(end)
        m.timeline.append(
            f"part {index}: {rows} rows, {(start - t0) * 1000:.0f} to {end * 1000:.0f} ms,"
            f" thread CPU {time.thread_time() - cpu:.2f} s"
        )
        return rows

    def close() -> None:
        m.backends[index] = proc_cpu_s(pid) - pg0
        part.close()

    return FilePart(write, close)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--native", action="store_true", help='csvDialect "postgres"')
    parser.add_argument("--parts", type=int, default=2)
    parser.add_argument(
        "--sinks",
        help="instead of single against parallel: the parallel read into the runner's FileSink,"
        " 'buffered' (8 MiB, as the runner opened it before) against 'blocks' (unbuffered, as a"
        " COPY's sink now is), e.g. --sinks buffered,blocks",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="egress-pcpu-"))
    cores = os.cpu_count() or 1
    kinds = args.sinks.split(",") if args.sinks else ["single", "parallel"]
    runs: dict[str, list[Measured]] = {kind: [] for kind in kinds}
    try:
        for r in range(args.rounds):
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                load = os.getloadavg()[0]
                if kind == "single":
                    m = single(work, args.native)
                elif kind == "parallel":
                    m = parallel(work, args.native, args.parts)
                else:
                    m = parallel(work, args.native, args.parts, kind)
                runs[kind].append(m)
                pg = " + ".join(f"{b:.2f}" for b in m.backends)
                print(
                    f"{kind:8} load {load:4.1f} wall {m.wall:5.2f}s egress {m.egress:4.2f}"
                    f" pg {pg} total {m.total:4.2f} floor {m.total / cores:4.2f}s",
                    flush=True,
                )
                for line in m.timeline:
                    print(f"    {line}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for kind, ms in runs.items():
        print(
            f"{kind:8} medians: wall {statistics.median(m.wall for m in ms):.2f}s"
            f" egress {statistics.median(m.egress for m in ms):.2f}"
            f" pg {statistics.median(sum(m.backends) for m in ms):.2f}"
            f" floor {statistics.median(m.total / cores for m in ms):.2f}s"
        )
    if args.sinks:
        for kind, ms in runs.items():
            tails = [m.wall - max(m.ends) for m in ms]
            tail = statistics.median(tails) * 1000
            print(f"{kind:8} tail after the last part, median {tail:.0f} ms")
        return 0
    ratios = [s.wall / p.wall for s, p in zip(runs["single"], runs["parallel"], strict=True)]
    spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
    print(f"single / parallel: {statistics.median(ratios):.2f}x ({spread})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
