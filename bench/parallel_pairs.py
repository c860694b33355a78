"""Single stream against ``parallelism: 2`` (or, ``--split``, unsplit against split by
region), each format's pair back to back on one server in ABBA order (A, B; then B, A),
``--rounds`` rounds: on a shared machine the load moves within a run, and a pair timed side by
side shares it; in ``extract_throughput``'s suite the two cases of a pair follow different
neighbours (a reference tool's output, another case's). Medians and the median of the
per-round ratios (parallel: single ÷ parallel; split: split ÷ unsplit, as issue 19 states
them), each run's CPU seconds beside its time: Egress's (the server's process tree) and the
PostgreSQL backends' of the bench database (``pg``; ``serving.BackendCpu``). Uses
``extract_throughput``'s table, cases and ratios.

    EGRESS_BENCH_DB=egress_bench_C PYTHONPATH=src .venv/bin/python bench/parallel_pairs.py
    PYTHONPATH=src .venv/bin/python bench/parallel_pairs.py --split --rounds 4
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path

import extract_throughput as et
from references import COLUMNS, DB, mysql_orders, psql_copy
from serving import BackendCpu

PAIRS = [
    ("csv (COPY fast path)", "parallel 2: csv"),
    ("csv (csvDialect postgres)", "parallel 2: csv (csvDialect postgres)"),
    ("csv (+ the float)", "parallel 2: csv (+ the float)"),
    ("jsonl", "parallel 2: jsonl"),
    ("parquet", "parallel 2: parquet"),
    ("mysql: csv", "parallel 2: mysql csv"),
]
SPLIT_PAIRS = [
    ("csv (COPY fast path)", "csv split by region (8)"),
    ("csv (+ the float)", "csv split by region (8, + the float)"),
    ("parquet", "parquet split by region (8)"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cases", help="comma-separated prefixes of the single cases")
    parser.add_argument("--split", action="store_true", help="unsplit against split pairs")
    args = parser.parse_args()
    pairs = [(a, b) for a, b in (SPLIT_PAIRS if args.split else PAIRS) if b in et.CASES]
    if args.cases:
        wanted = [w.strip() for w in args.cases.split(",")]
        pairs = [p for p in pairs if any(p[0].startswith(w) for w in wanted)]
    et.create_table(args.rows, False)
    kinds = {et.CASES[a][3] for a, _ in pairs}
    if "mysql" in kinds:
        mysql_orders(args.rows)
    work = Path(tempfile.mkdtemp(prefix="egress-pairs-"))
    fields = [c.strip() for c in COLUMNS.split(",")]
    times: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    pg_cpus: dict[str, list[float]] = {}  # the PostgreSQL backends' (MySQL: not counted)
    try:
        with et.serving(work, kinds, None) as on:
            et.run_case(on, pairs[0][0], fields)  # warm-up: the worker's one-time costs
            for r in range(args.rounds):
                psql_s = psql_copy(work / "psql.csv")
                print(f"round {r + 1} load {os.getloadavg()[0]:.1f} psql {psql_s:.2f}s", flush=True)
                for a, b in pairs:
                    for case in (a, b) if r % 2 == 0 else (b, a):
                        with BackendCpu(DB) as pg:
                            secs, count, _peak, cpu, _span = et.run_case(on, case, fields)
                        assert count == args.rows, (case, count)
                        times.setdefault(case, []).append(secs)
                        cpus.setdefault(case, []).append(cpu)
                        pg_cpus.setdefault(case, []).append(pg.cpu)
                        print(
                            f"  {case:40} {secs:6.2f}s cpu {cpu:5.2f} pg {pg.cpu:5.2f}",
                            flush=True,
                        )
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the runs' files: gigabytes
    print(f"\nmedians over {args.rounds} rounds (load now {os.getloadavg()[0]:.1f})")
    for a, b in pairs:
        ratios = [x / y for x, y in zip(times[a], times[b], strict=True)]
        if et.RELATIVE[b][1] == "time":  # the later case's time ÷ the first's
            ratios = [1 / r for r in ratios]
        print(
            f"{a:28} {statistics.median(times[a]):6.2f}s cpu {statistics.median(cpus[a]):5.2f}"
            f" pg {statistics.median(pg_cpus[a]):5.2f}"
            f" | {b:40} {statistics.median(times[b]):6.2f}s cpu {statistics.median(cpus[b]):5.2f}"
            f" pg {statistics.median(pg_cpus[b]):5.2f}"
            f" | {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
