"""Status polls per second: `GET` execution details over keep-alive connections, idle and while
one extraction runs, on SQLite and on PostgreSQL metadata, with the worker embedded in `egress
serve` and in its own `egress worker` process (`serve --no-worker`, the deployment the README
recommends under load); and the same client against a bare FastAPI route returning a constant
(the framework's ceiling on this machine).

    .venv/bin/python bench/polling.py [--rows 1000000] [--seconds 10] [--connections 8]
                                      [--backends sqlite,postgresql]
                                      [--deployments embedded,separate] [--python-client]

Every server runs with the product's defaults (heartbeat, poll, and the revocation cache that
answers a token check and the caller's sign-in limit from memory for
EGRESS_REVOCATION_CACHE_S).

The load comes from `wrk` when it is on the PATH (Debian: `apt-get install wrk`; 2 threads,
--connections keep-alive connections), else from --connections Python threads, each with its
own keep-alive httpx client. The extraction is a JSONL export of --rows orders from a SQLite
source (the slow format: the run stays IN_PROGRESS for the whole measurement; the script says
so if it did not). PostgreSQL metadata goes into a throwaway database on 127.0.0.1:5432.
Beside each figure: the server process's CPU time per request (user + system, from /proc), which
moves far less than requests per second when other jobs share the machine.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import Server, free_port, start_server, stop_server, wait_for_status
from tests.support.http import sqlite_template, submitted_configuration

from egress.demo import create_orders_db
from egress.settings import DEFAULT_HEARTBEAT_S, DEFAULT_POLL_S, DEFAULT_REVOCATION_CACHE_S

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CONFIGS = "/api/v1/extraction-configurations"
_WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_P99 = re.compile(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
CEILING_APP = textwrap.dedent(
    """
    import sys, uvicorn
    from fastapi import FastAPI
    app = FastAPI()
    @app.get("/constant")
    def constant() -> dict[str, str]:
        return {"status": "COMPLETED"}
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


@dataclass(frozen=True)
class Load:
    rate: float  # requests per second
    p99_ms: float
    client: str
    cpu_ms: float | None = None  # the server process's CPU time per request


# (url, bearer token or None, seconds, connections) → the load it sustained
Measure = Callable[[str, str | None, int, int], Load]


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(measure: Measure, pid: int, url: str, token: str | None, s: int, c: int) -> Load:
    """``measure``, with the CPU time process ``pid`` spent per request meanwhile."""
    before = _cpu_s(pid)
    load = measure(url, token, s, c)
    after = _cpu_s(pid)
    if before is None or after is None or load.rate == 0:
        return load
    per_request = (after - before) * 1000 / (load.rate * s)
    return Load(load.rate, load.p99_ms, load.client, per_request)


def wrk(url: str, token: str | None, seconds: int, connections: int) -> Load:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate, p99 = _WRK_RATE.search(out), _WRK_P99.search(out)
    if rate is None or p99 is None or "Non-2xx" in out:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return Load(float(rate[1]), float(p99[1]) * _UNIT_MS[p99[2]], f"wrk, {connections} connections")


def python_threads(url: str, token: str | None, seconds: int, connections: int) -> Load:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies: list[list[float]] = [[] for _ in range(connections)]
    end = time.monotonic() + seconds

    def poll(mine: list[float]) -> None:
        with httpx.Client(headers=headers, timeout=30) as client:
            while (start := time.monotonic()) < end:
                client.get(url).raise_for_status()
                mine.append((time.monotonic() - start) * 1000)

    threads = [threading.Thread(target=poll, args=(mine,)) for mine in latencies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = sorted(v for mine in latencies for v in mine)
    p99 = statistics.quantiles(every, n=100)[98]
    return Load(len(every) / seconds, p99, f"{connections} Python threads")


def ceiling(measure: Measure, seconds: int, connections: int) -> Load:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", CEILING_APP, str(port)])
    try:
        url = f"http://127.0.0.1:{port}/constant"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        return measured(measure, process.pid, url, None, seconds, connections)
    finally:
        process.terminate()
        process.wait()


def _metadata_url(backend: str) -> tuple[dict[str, str], str | None]:
    if backend == "sqlite":
        return {}, None
    name = f"egress_poll_{secrets.token_hex(3)}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    return {"EGRESS_DATABASE_URL": url}, name


def _drop(name: str | None) -> None:
    if name:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True)
class Setup:
    backend: str  # sqlite | postgresql
    deployment: str  # embedded | separate


def _start(setup: Setup, folder: Path) -> tuple[Server, subprocess.Popen[bytes] | None, str | None]:
    """The API server (and, separately, the worker) of ``setup``; its PostgreSQL database."""
    env, database = _metadata_url(setup.backend)
    # The server's own defaults, not the test suite's faster heartbeat and poll, nor its
    # revocation cache turned off.
    env |= {
        "EGRESS_HEARTBEAT_S": str(DEFAULT_HEARTBEAT_S),
        "EGRESS_POLL_S": str(DEFAULT_POLL_S),
        "EGRESS_REVOCATION_CACHE_S": str(DEFAULT_REVOCATION_CACHE_S),
        "EGRESS_ACCESS_LOG": "false",  # the product's default (the test suite turns it on)
    }
    separate = setup.deployment == "separate"
    server = start_server(folder, env_extra=env, args=("--no-worker",) if separate else ())
    worker = None
    if separate:
        command = [sys.executable, "-m", "egress.cli.main", "worker", "--name", "bench"]
        log = (folder / "worker.log").open("wb")
        worker = subprocess.Popen(command, env=server.env, stdout=log, stderr=subprocess.STDOUT)
    return server, worker, database


def run_setup(
    setup: Setup, work: Path, source: Path, measure: Measure, seconds: int, connections: int
) -> tuple[Load, Load, str]:
    folder = work / f"{setup.backend}-{setup.deployment}"
    folder.mkdir()
    server, worker, database = _start(setup, folder)
    pid = server.process.pid
    try:
        with server.client() as http:
            tpl = sqlite_template(http, source, "shop", "orders")
            small = submitted_configuration(http, tpl, "small", format="jsonl", filter="id <= 10")
            big = submitted_configuration(http, tpl, "big", format="jsonl")
            eid = http.post(f"{CONFIGS}/{small}/executions").json()["id"]
            wait_for_status(http, small, eid, {"COMPLETED"})
            url = f"{server.base_url}{CONFIGS}/{small}/executions/{eid}"
            idle = measured(measure, pid, url, server.token, seconds, connections)
            eid = http.post(f"{CONFIGS}/{big}/executions").json()["id"]
            wait_for_status(http, big, eid, {"IN_PROGRESS"})
            url = f"{server.base_url}{CONFIGS}/{big}/executions/{eid}"
            busy = measured(measure, pid, url, server.token, seconds, connections)
            after = http.get(url).json()
            note = (
                f"run still IN_PROGRESS after the window, {after['progress']['processed']:,} "
                "records read"
                if after["latestStatus"] == "IN_PROGRESS"
                else f"WARNING: the run ended during the window ({after['latestStatus']})"
            )
            http.post(f"{url}/cancel")
        return idle, busy, note
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait()
        stop_server(server)
        _drop(database)


def _row(backend: str, label: str, state: str, load: Load, top: Load) -> str:
    cpu = f"{load.cpu_ms:.2f}" if load.cpu_ms is not None else "-"
    return (
        f"{backend:<11} {label:<24} {state:<21} {load.rate:>7,.0f} "
        f"{load.rate / top.rate:>9.2f}x {load.p99_ms:>8.1f} {cpu:>8}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--deployments", default="embedded,separate")
    parser.add_argument("--python-client", action="store_true", help="even if wrk is installed")
    args = parser.parse_args()
    measure: Measure
    if shutil.which("wrk") and not args.python_client:
        measure = wrk
    else:
        if not args.python_client:
            print("wrk not found (Debian: apt-get install wrk): using Python threads")
        measure = python_threads
    setups = [
        Setup(backend, deployment)
        for backend in args.backends.split(",")
        for deployment in args.deployments.split(",")
    ]

    with tempfile.TemporaryDirectory(prefix="egress-poll-") as tmp:
        work = Path(tmp)
        # The source beside the servers' folders: start_server's files root is their parent.
        (work / "src").mkdir()
        source = create_orders_db(work / "src" / "shop.db", rows=args.rows)
        top = ceiling(measure, args.seconds, args.connections)
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
        print(f"{when} UTC, load {os.getloadavg()[0]:.1f}, {top.client}")
        header = f"{'metadata':<11} {'worker':<24} {'state':<21} {'req/s':>7} {'of ceiling':>10}"
        print(f"{header} {'p99 ms':>8} {'CPU ms/req':>8}")
        print(_row("-", "bare FastAPI route", "ceiling", top, top))
        for setup in setups:
            idle, busy, note = run_setup(
                setup, work, source, measure, args.seconds, args.connections
            )
            print(_row(setup.backend, setup.deployment, "idle", idle, top))
            print(_row(setup.backend, setup.deployment, "one JSONL extraction", busy, top))
            print(f"  ({note}; load {os.getloadavg()[0]:.1f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
