"""The benchmarks' `egress serve` process: started on a free port with a bootstrap token, and
its process tree's memory (PSS) and CPU seconds, read from /proc."""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' support code

from tests.support.listeners import free_port


def scratch_dir(prefix: str) -> Path:
    """A folder for one benchmark's data, removed when the benchmark exits, even on an error
    (a 10 M-row run leaves ~15 GB: left behind, a day of runs filled the disk). Set
    EGRESS_BENCH_KEEP=1 to keep it for a look."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    if not os.environ.get("EGRESS_BENCH_KEEP"):
        atexit.register(shutil.rmtree, work, True)
    return work


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    token: str


def start_server(
    work: Path, extra_env: dict[str, str] | None = None, preload: str | None = None
) -> Server:
    """``preload``: a module imported before the service (run_timeline.py's instrumentation)."""
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "EGRESS_DATA_DIR": str(work),
        "EGRESS_PORT": str(port),
        "EGRESS_BOOTSTRAP_TOKEN": token,
        "EGRESS_LOG_LEVEL": "WARNING",
        "EGRESS_WORKER_CONCURRENCY": "1",
        # The Parquet folder of the files case sits beside the data dir, in the bench's folder.
        "EGRESS_FILES_ROOTS": str(work.parent),
        **(extra_env or {}),
    }
    log = (work.parent / f"{work.name}.log").open("wb")
    command = [sys.executable, "-m", "egress.cli.main", "serve"]
    if preload is not None:
        run = f"import {preload}, runpy; runpy.run_module('egress.cli.main', run_name='__main__')"
        command = [sys.executable, "-c", run, "serve"]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return Server(process, url, token)
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def _tree(pid: int) -> list[int]:
    """The server and its descendants (`egress serve` forks its worker into a child process)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue  # the process ended meanwhile
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def rss_kb(pid: int) -> int:
    """Memory of the server's process tree: the proportional set size (PSS) summed, so the
    pages a forked worker shares with its parent count once, not twice as RSS would."""
    total = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far; raises OSError once it has ended."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of the server's process tree so far (robust to a shared
    machine's load, unlike wall time)."""
    total = 0.0
    for p in _tree(pid):
        try:
            total += proc_cpu_s(p)
        except OSError:
            continue
    return total


def backend_cpu(admin_url: str, databases: list[str]) -> dict[int, float]:
    """User + system CPU seconds so far of each PostgreSQL backend connected to ``databases``
    (but this query's own), by pid: a case's cost is the growth of each (``cpu_growth``)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        pids = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s)"
                " AND pid <> pg_backend_pid()",
                (databases,),
            )
        ]
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def cpu_growth(before: dict[int, float], after: dict[int, float]) -> float:
    """The backends' CPU between two ``backend_cpu`` readings (a backend that ended in between
    is not counted: sessions are reused, so that is rare)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


class PeakRss:
    """The server's memory peak over an extraction, without sampling it: each process of its
    tree has its peak RSS (``VmHWM``) reset as the run starts (``/proc/<pid>/clear_refs``, 5)
    and read as it ends; ``peak`` is the tree's PSS at the start plus each process's growth to
    its own peak (what a run adds is private memory, counted alike by both). Sampling the PSS
    every 50 ms instead (``smaps_rollup`` walks the worker's page tables under its memory map's
    lock) slowed a split CSV run by 0.1-0.3 s (bench/README.md, 2026-12-03). ``cpu``: the
    tree's CPU seconds over the run."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.cpu = pid, 0, 0.0
        self._start_kb = 0
        self._rss_kb: dict[int, int] = {}

    def __enter__(self) -> PeakRss:
        self._start_kb = rss_kb(self.pid)
        for p in _tree(self.pid):
            try:
                Path(f"/proc/{p}/clear_refs").write_text("5\n")
                self._rss_kb[p] = _status_kb(p, "VmRSS")
            except OSError:
                continue  # ended meanwhile
        self.cpu = -cpu_s(self.pid)
        return self

    def __exit__(self, *_: object) -> None:
        self.cpu += cpu_s(self.pid)
        growth = 0
        for p, before in self._rss_kb.items():
            try:
                growth += max(0, _status_kb(p, "VmHWM") - before)
            except OSError:
                continue
        self.peak = self._start_kb + growth


def _status_kb(pid: int, field: str) -> int:
    """A ``kB`` figure of ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise OSError(f"{field} not in /proc/{pid}/status")


class BackendCpu:
    """CPU seconds of the PostgreSQL backends serving ``database`` while a run goes on: every
    backend's ``/proc/<pid>/stat`` sampled every 20 ms (a backend's title names its database),
    each counted from its first sample (0 for one started meanwhile) to its last; a session
    closed between two samples loses at most one interval of its CPU."""

    def __init__(self, database: str) -> None:
        self._title = f" {database} ".encode()
        self._ours: dict[int, bool] = {}
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.cpu = 0.0

    def _sample(self, started: bool) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                if pid not in self._ours:
                    title = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if not title.startswith(b"postgres: "):  # not (yet) a named backend
                        continue
                    self._ours[pid] = self._title in title
                if not self._ours[pid]:
                    continue
                cpu = proc_cpu_s(pid)
            except OSError:
                continue  # the process ended meanwhile
            self._first.setdefault(pid, cpu if not started else 0.0)
            self._last[pid] = cpu

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._sample(True)

    def __enter__(self) -> BackendCpu:
        self._sample(False)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(True)
        self.cpu = sum(self._last[p] - self._first[p] for p in self._last)
