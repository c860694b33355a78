"""Whether the single COPY's backend waits on Egress: ``PostgresSource.copy_rows`` in process
into a plain file, into a ``FileSink`` as the runner opened it before (8 MiB buffer, hashed
on the reading thread: ``buffered``) and as a COPY's sink now is (``blocks``: unbuffered),
in turns. Per run: wall, Egress's CPU, the
backend's CPU, its time waiting for a core (``/proc/<pid>/schedstat``) and the rest of the
wall, ``blocked``: the backend asleep, i.e. waiting for the client to drain the socket (its
reads of a cached table do not wait on the disk) — a figure a loaded machine does not hide
as it does the wall. And how long the sink's close took after the COPY ended.

    EGRESS_BENCH_DB=egress_bench_C PYTHONPATH=src .venv/bin/python bench/copy_sink_stall.py \\
        [--rounds 3] [--kinds file,buffered,blocks]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from egress.sinks.file import FileSink
from egress.sources.arrow_types import arrow_schema
from egress.storage import Storage
from parallel_cpu import own_cpu, plan_of, source
from rounds import alternated, print_medians


def schedstat(pid: int) -> tuple[float, float]:
    """Seconds on a core and waiting for one, of process ``pid`` so far."""
    ran, waited, _slices = Path(f"/proc/{pid}/schedstat").read_text().split()
    return int(ran) / 1e9, int(waited) / 1e9


def one(work: Path, kind: str) -> dict[str, float]:
    src = source(work)
    plan = plan_of(src, 1)
    with src._idle.use() as conn:  # the session copy_rows will use, already open
        pid = conn.info.backend_pid
    ran0, waited0 = schedstat(pid)
    storage = Storage((work / "files").as_uri())
    closing = 0.0
    cpu0, t0 = own_cpu(), time.perf_counter()
    if kind == "file":
        with (work / "out.csv").open("wb") as out:
            src.copy_rows(plan, out, lambda _rows: None)
    else:
        schema = arrow_schema(plan.fields)
        sink = FileSink(
            storage, "k/out.csv", "csv", "none", schema, 8 << 20, "out.csv", blocks=kind == "blocks"
        )
        rows = src.copy_rows(plan, sink.stream, lambda _rows: None)
        closing = time.perf_counter()
        sink.close(rows)
        closing = time.perf_counter() - closing
    wall, egress = time.perf_counter() - t0, own_cpu() - cpu0
    ran1, waited1 = schedstat(pid)
    src.close()
    shutil.rmtree(work / "files", ignore_errors=True)
    (work / "out.csv").unlink(missing_ok=True)
    ran, waited = ran1 - ran0, waited1 - waited0
    return {
        "wall": wall,
        "egress": egress,
        "pg": ran,
        "pg waiting for a core": waited,
        "pg blocked": wall - ran - waited,
        "close ms": closing * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kinds", default="file,buffered,blocks")
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    work = Path(tempfile.mkdtemp(prefix="egress-stall-"))
    try:
        runs = alternated(kinds, args.rounds, lambda kind: one(work, kind))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_medians(runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
