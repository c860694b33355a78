"""One run's timeline, trigger to COMPLETED as the benchmark's client sees it: the server (and
its forked worker) imports ``timeline_hook``, which records the start and end of each step of
a run; the client records its trigger and its status polls (every ``--poll`` s, as
``extract_throughput.py`` does: 0.05). Prints, per run, each step relative to the trigger.
Uses ``extract_throughput``'s table and cases.

    EGRESS_BENCH_DB=egress_bench_C PYTHONPATH=src .venv/bin/python bench/run_timeline.py \\
        [--case "csv (COPY fast path)"] [--runs 3] [--poll 0.05]
"""

from __future__ import annotations

import argparse
import os
import secrets
import time
from pathlib import Path

import httpx

import extract_throughput as et
from references import COLUMNS, DB, mysql_orders
from serving import scratch_dir, start_server


def timed_run(
    http: httpx.Client, template: str, case: str, poll_s: float, log: Path
) -> tuple[float, float]:
    """One extraction of ``case``; (trigger sent, COMPLETED seen) as wall-clock times, the
    client's requests appended to ``log``."""
    fmt, extra, split, _source, parallelism = et.CASES[case]
    fields = [*[c.strip() for c in COLUMNS.split(",")], *extra]
    dialect = "postgres" if case in et.POSTGRES_DIALECT_CASES else None
    name = f"t{secrets.token_hex(3)}"
    cfg = {
        "id": et.submitted_configuration(
            http, template, name, fmt, fields, split, parallelism, dialect
        )
    }
    events = []
    sent = time.time()
    ex = http.post(f"/api/v1/extraction-configurations/{cfg['id']}/executions").json()
    events.append((sent, time.time(), "client POST trigger"))
    while True:
        start = time.time()
        d = http.get(f"/api/v1/extraction-configurations/{cfg['id']}/executions/{ex['id']}").json()
        events.append((start, time.time(), f"client GET → {d['latestStatus']}"))
        if d["latestStatus"] in ("COMPLETED", "FAILED", "COMPLETED_NO_DATA"):
            break
        time.sleep(poll_s)
    with log.open("a") as f:
        for s, e, name in events:
            f.write(f"{s:.6f} {e:.6f} client main {name}\n")
    return sent, events[-1][1]


def show(log: Path, sent: float, seen: float) -> None:
    rows = []
    for line in log.read_text().splitlines():
        start, end, pid, thread, name = line.split(" ", 4)
        s, e = float(start), float(end)
        if sent - 0.001 <= s <= seen + 0.001:
            rows.append((s, e, pid, thread, name))
    rows.sort()
    polls = sum(1 for r in rows if r[4].startswith("client GET"))
    print(f"{'start ms':>9} {'end ms':>9} {'took ms':>8}  step (process, thread)")
    for s, e, pid, thread, name in rows:
        if name.startswith("client GET") and not name.endswith("COMPLETED") and polls > 4:
            continue  # the in-progress polls: only their count matters
        if name == "api.get" and polls > 4:
            continue
        print(
            f"{(s - sent) * 1000:9.1f} {(e - sent) * 1000:9.1f} {(e - s) * 1000:8.1f}"
            f"  {name} ({pid}, {thread})"
        )
    print(f"trigger → COMPLETED seen: {(seen - sent) * 1000:.1f} ms, {polls} status reads")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--case", default="csv (COPY fast path)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--poll", type=float, default=0.05)
    args = parser.parse_args()
    et.create_table(args.rows, False)
    work = scratch_dir("egress-timeline-")
    # The case's own source: its files (a Parquet folder of the table) or its MySQL copy.
    kind = et.CASES[args.case][3]
    connections: dict[str, dict[str, object]] = {
        "postgresql": {"host": "127.0.0.1", "port": 5432, "database": DB, "user": "postgres"},
        "mysql": {"host": "127.0.0.1", "port": 3306, "database": DB, "user": "root"},
    }
    if kind == "files":
        connections["files"] = {"url": et.parquet_folder(work / "lake").as_uri()}
    elif kind == "mysql":
        mysql_orders(args.rows)
    log = work / "timeline.log"
    bench = str(Path(__file__).resolve().parent)
    env = {
        "EGRESS_TIMELINE": str(log),
        "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), bench) if p),
    }
    server = start_server(work / "data", env, preload="timeline_hook")
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=60
        ) as http:
            template = et.source_template(http, kind, connections[kind])
            timed_run(http, template, args.case, args.poll, log)  # warm-up
            for n in range(args.runs):
                sent, seen = timed_run(http, template, args.case, args.poll, log)
                print(f"\n{args.case}, run {n + 1}, load {os.getloadavg()[0]:.1f}")
                show(log, sent, seen)
    finally:
        server.process.terminate()
        server.process.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
