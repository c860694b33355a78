"""What every end-to-end module shares: a server per module whose log must stay clean, a client
that fails the test on any 5xx at the request that caused it, and the problem+json check."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Server, start_server, stop_server
from tests.support.http import sqlite_connection, template
from tests.support.http import submitted_configuration as configuration

API = "/api/v1"
CONFIGS = f"{API}/extraction-configurations"
DONE = {"COMPLETED", "COMPLETED_NO_DATA", "FAILED", "CANCELLED"}
PROBLEM = "application/problem+json"
_SERVER_ERROR = re.compile(r'HTTP/1\.[01]" 5\d\d')


def _no_server_errors(response: httpx.Response) -> None:
    if response.status_code >= 500:
        response.read()
        raise AssertionError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code}: {response.text[:2000]}"
        )


def api(server: Server, token: str | None = None) -> httpx.Client:
    """A client with ``token`` (default: the bootstrap token); any 5xx fails the test."""
    client = server.client(token)
    client.event_hooks["response"] = [_no_server_errors]
    return client


def anonymous(server: Server) -> httpx.Client:
    """No Authorization header at all; any 5xx fails the test."""
    return httpx.Client(
        base_url=server.base_url, timeout=30, event_hooks={"response": [_no_server_errors]}
    )


def assert_clean_log(log: str, secrets: Iterable[str] = ()) -> None:
    """No stack trace, no 5xx in the access log, and none of ``secrets`` anywhere."""
    assert "Traceback" not in log, log[-4000:]
    bad = [line for line in log.splitlines() if _SERVER_ERROR.search(line)]
    assert not bad, "\n".join(bad)
    for secret in secrets:
        assert secret not in log, "a secret was written to the server log"


@contextmanager
def running_server(
    tmp: Path,
    *,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    secrets: Iterable[str] = (),
    fresh: bool = False,
) -> Iterator[Server]:
    """A real `egress serve`; on the way out its log is checked (see ``assert_clean_log``)."""
    server = start_server(tmp, env_extra=env, args=args, fresh=fresh)
    try:
        yield server
    finally:
        stop_server(server)
    assert_clean_log(server.log(), secrets)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (``serve``'s supervisor and its worker process)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # ended meanwhile
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    below, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        below += children
        frontier = children
    return below


@contextmanager
def workers_paused(server: Server) -> Iterator[None]:
    """The server's worker process stopped (SIGSTOP) meanwhile: what is queued stays queued,
    so a rule about queued or running work is tested without racing the worker."""
    stopped = _descendants(server.process.pid)
    for _ in range(200):
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        # kill() returns before the signal lands: a process still running could take the
        # write lock after the check below and stop holding it.
        _wait_until_stopped(stopped)
        if _metadata_writable(server):
            break
        # Stopped inside a write transaction (a claim, a lease renewal): every write the
        # test makes would wait for a lock nobody can release. Let it finish and try again.
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.02)
    else:
        raise AssertionError("the worker never paused outside a metadata write")
    try:
        yield
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)


def _wait_until_stopped(pids: list[int]) -> None:
    """Every thread of ``pids`` stopped (or gone)."""
    for _ in range(2000):
        if all(_stopped(task) for pid in pids for task in Path(f"/proc/{pid}/task").glob("*")):
            return
        time.sleep(0.001)
    raise AssertionError(f"processes {pids} did not stop")


def _stopped(task: Path) -> bool:
    try:
        return (task / "stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t", "Z", "X")
    except OSError:  # ended meanwhile: holds nothing
        return True


def _metadata_writable(server: Server) -> bool:
    """No process holds the SQLite metadata database's write lock (always so on PostgreSQL
    metadata, where a stopped worker's row locks never cover what these tests write)."""
    path = server.data_dir / "egress.db"
    if not path.exists():
        return True
    meta = sqlite3.connect(path, timeout=0.2, isolation_level=None)
    try:
        meta.execute("BEGIN IMMEDIATE")
        meta.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        meta.close()


def workspace_id(server: Server, name: str = "default") -> str:
    """A workspace's id, read from the server's metadata database (the bootstrap token's
    workspace is ``default``)."""
    with sqlite3.connect(server.data_dir / "egress.db") as meta:
        found = meta.execute("SELECT id FROM workspaces WHERE name = ?", (name,)).fetchone()
    assert found is not None, name
    return str(found[0])


def problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """``r`` is an RFC 9457 problem with ``status``; ``field``, if given, is among its errors."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert body["status"] == status and body["title"] and body["detail"]
    if field is not None:
        assert field in [e["field"] for e in body.get("errors", [])], body
    return body


__all__ = ["configuration", "sqlite_connection", "template"]


def trigger(http: httpx.Client, config_id: str, **options: Any) -> dict[str, Any]:
    r = http.post(f"{CONFIGS}/{config_id}/executions", json=options or None)
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


SIGNED_FIELDS = ("signedUrl", "signedUrlExpiresAt")


def unsigned(value: Any) -> Any:
    """``value`` (a run, a file, a list of them) without its signed links: each answer signs its
    own, with an expiry that moves on, so two answers about one file differ only there."""
    if isinstance(value, dict):
        return {k: unsigned(v) for k, v in value.items() if k not in SIGNED_FIELDS}
    if isinstance(value, list):
        return [unsigned(v) for v in value]
    return value
