"""Issue 10, item 5 (and the SIGTERM clause of item 4): runs on a hanging source cannot hold the
server. Every test drives a real `egress serve` process against a source that hangs inside a
driver call: a PostgreSQL table locked ACCESS EXCLUSIVE and a MariaDB table under LOCK TABLES
WRITE, both held by the test, so a read waits in the driver for as long as the test likes.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from egress.demo import create_orders_db
from tests.conftest import MysqlDatabase, PgDatabase, start_server, stop_server
from tests.e2e.helpers import (
    API,
    CONFIGS,
    api,
    assert_clean_log,
    configuration,
    sqlite_connection,
    template,
    trigger,
)

ROWS = 20
DONE = {"COMPLETED", "COMPLETED_NO_DATA", "FAILED", "CANCELLED"}


# ----------------------------------------------------------------- hanging sources
@pytest.fixture
def pg_source(pg_db: PgDatabase) -> PgDatabase:
    with pg_db.connect() as conn:
        conn.execute(f"CREATE TABLE hang AS SELECT g AS id FROM generate_series(1, {ROWS}) g")
    return pg_db


@pytest.fixture
def mysql_source(mysql_db: MysqlDatabase) -> MysqlDatabase:
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE hang (id INT PRIMARY KEY)")
        cur.executemany("INSERT INTO hang VALUES (%s)", [(i,) for i in range(1, ROWS + 1)])
    return mysql_db


@contextmanager
def pg_locked(db: PgDatabase) -> Iterator[None]:
    """Every read of ``hang`` waits on this lock, inside the driver, until the block ends."""
    conn = psycopg.connect(db.url)
    conn.execute("LOCK TABLE hang IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        conn.rollback()
        conn.close()


@contextmanager
def mysql_locked(db: MysqlDatabase) -> Iterator[None]:
    conn = db.connect()
    with conn.cursor() as cur:
        cur.execute("LOCK TABLES hang WRITE")
    try:
        yield
    finally:
        with conn.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        conn.close()


def waiting_on_lock(db: PgDatabase) -> int:
    """Queries of other sessions still waiting for a lock in ``db`` (server side)."""
    with psycopg.connect(db.url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE NOT l.granted AND d.datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


@contextmanager
def silent_listener() -> Iterator[tuple[int, threading.Event]]:
    """A TCP port that accepts connections and then never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    reached = threading.Event()

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)
            reached.set()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1], reached
    finally:
        server.close()
        for conn in accepted:
            conn.close()


# -------------------------------------------------------------------- HTTP steps
def connection(http: httpx.Client, name: str, type_: str, settings: dict[str, Any]) -> str:
    r = http.post(f"{API}/connections", json={"name": name, "type": type_, "settings": settings})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def pg_config(http: httpx.Client, db: PgDatabase, name: str, fmt: str = "csv") -> str:
    settings = {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"}
    tpl = template(http, connection(http, f"pg_{name}", "postgresql", settings), "public.hang")
    return configuration(http, tpl["id"], name, format=fmt)


def mysql_config(http: httpx.Client, db: MysqlDatabase, name: str) -> str:
    conn = connection(http, f"my_{name}", "mysql", db.settings)
    return configuration(http, template(http, conn, f"{db.name}.hang")["id"], name)


def details(http: httpx.Client, cfg: str, eid: str) -> dict[str, Any]:
    r = http.get(f"{CONFIGS}/{cfg}/executions/{eid}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def wait_until(
    http: httpx.Client,
    cfg: str,
    eid: str,
    statuses: set[str],
    timeout: float = 30,
    attempt: int = 1,
) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    """Poll until the latest run is in ``statuses`` at ``attempt`` or later; also returns
    every (status, attempt) seen on the way, in order, without repeats."""
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + timeout
    while True:
        body = details(http, cfg, eid)
        run = body["runs"][-1]
        if not seen or seen[-1] != (run["status"], run["attempt"]):
            seen.append((run["status"], run["attempt"]))
        if run["status"] in statuses and run["attempt"] >= attempt:
            return body, seen
        if time.monotonic() > deadline:
            raise AssertionError(f"still {seen[-1]} after {timeout}s: {body}")
        time.sleep(0.05)


def cancel(http: httpx.Client, cfg: str, eid: str) -> float:
    """Cancel; returns how long the run took to end CANCELLED after the request."""
    asked = time.monotonic()
    r = http.post(f"{CONFIGS}/{cfg}/executions/{eid}/cancel")
    assert r.status_code == 202, r.text
    body, _ = wait_until(http, cfg, eid, DONE, timeout=30)
    took = time.monotonic() - asked
    run = body["runs"][-1]
    assert (run["status"], run["file"], run["attempt"]) == ("CANCELLED", None, 1), body
    return took


def fast_config(http: httpx.Client, tmp_path: Path) -> str:
    db = create_orders_db(tmp_path / "shop.db", rows=10)
    tpl = template(http, sqlite_connection(http, db, "shop"), "main.orders")
    return configuration(http, tpl["id"], "fast")


# ------------------------------------------------------------------------- tests
def test_cancel_interrupts_runs_stuck_in_driver_calls_within_two_seconds(
    tmp_path: Path, pg_source: PgDatabase, mysql_source: MysqlDatabase
) -> None:
    """Hanging runs fill every worker slot; cancel ends each CANCELLED within 2 s while the
    locks are still held (the driver call was interrupted), publishing nothing; the freed
    slots then run what was queued behind them."""
    env = {"EGRESS_WORKER_CONCURRENCY": "3"}
    server = start_server(tmp_path, env)
    try:
        with api(server) as http:
            copy_path = pg_config(http, pg_source, "pg_copy")  # psycopg COPY
            arrow_path = pg_config(http, pg_source, "pg_arrow", fmt="parquet")  # ADBC
            mysql = mysql_config(http, mysql_source, "mysql")
            queued = fast_config(http, tmp_path)
            with pg_locked(pg_source), mysql_locked(mysql_source):
                hanging = [
                    (cfg, trigger(http, cfg)["id"]) for cfg in (copy_path, arrow_path, mysql)
                ]
                for cfg, eid in hanging:
                    wait_until(http, cfg, eid, {"IN_PROGRESS"})
                waiting = trigger(http, queued)["id"]
                # Every slot is held by a hanging run: the next run waits its turn.
                assert details(http, queued, waiting)["latestStatus"] == "PENDING"
                took = [cancel(http, cfg, eid) for cfg, eid in hanging]
                assert max(took) < 2.0, took
                done, _ = wait_until(http, queued, waiting, DONE)
                assert done["latestStatus"] == "COMPLETED", done
                # PostgreSQL stopped the queries too: nothing waits on the lock any more.
                deadline = time.monotonic() + 10
                while waiting_on_lock(pg_source) and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert waiting_on_lock(pg_source) == 0
    finally:
        stop_server(server)
    assert_clean_log(server.log())
    stored = [p.name for p in (server.data_dir / "files").rglob("*") if p.is_file()]
    assert stored and all(name.startswith("fast") for name in stored), stored


def test_a_cancel_requested_before_a_crash_ends_cancelled_after_the_restart(
    tmp_path: Path, pg_source: PgDatabase
) -> None:
    """The issue's sequence: cancel answered 202 on a run stuck in a driver call, the server
    died before the run ended, and after the restart the reaper requeued it and it ended
    COMPLETED. Now the reaper ends it CANCELLED, never PENDING, never COMPLETED."""
    env = {"EGRESS_LEASE_S": "2"}
    # An API without a worker on the same data dir: it answers while the worker is frozen.
    front = start_server(tmp_path, env, args=("--no-worker",))
    servers = [front]
    try:
        with api(front) as http:
            cfg = pg_config(http, pg_source, "crash")
            with pg_locked(pg_source):
                eid = trigger(http, cfg)["id"]
                # The worker inside the server process: freezing and killing it hit the worker.
                worker = start_server(tmp_path, {**env, "EGRESS_EMBEDDED_WORKER": "thread"})
                servers.append(worker)
                wait_until(http, cfg, eid, {"IN_PROGRESS"})
                # Frozen, the worker cannot see the cancel before it is killed.
                worker.process.send_signal(signal.SIGSTOP)
                answers: list[httpx.Response] = []
                asking = threading.Thread(
                    target=lambda: answers.append(
                        http.post(f"{CONFIGS}/{cfg}/executions/{eid}/cancel")
                    )
                )
                asking.start()
                asking.join(5)  # the frozen worker may hold the SQLite write lock: kill frees it
                worker.process.kill()
                worker.process.wait()
                asking.join()
                assert answers[0].status_code == 202, answers[0].text
                assert details(http, cfg, eid)["latestStatus"] == "IN_PROGRESS"
            # The lock is gone: a run put back in the queue would now complete.
            restarted = start_server(tmp_path, env)
            servers.append(restarted)
            body, seen = wait_until(http, cfg, eid, DONE)
            assert seen == [("IN_PROGRESS", 1), ("CANCELLED", 1)], seen
            assert body["runs"][-1]["file"] is None
            assert len(body["runs"]) == 1
    finally:
        for s in servers:
            if s.process.poll() is None:
                stop_server(s)
    assert_clean_log(restarted.log())


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_a_source_that_sends_nothing_fails_each_attempt_at_the_stall_limit(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    env = {"EGRESS_SOURCE_STALL_S": "2", "EGRESS_MAX_ATTEMPTS": "2"}
    stalled = "the source sent no data for 2 s (EGRESS_SOURCE_STALL_S)"
    server = start_server(tmp_path, env)
    try:
        with api(server) as http:
            if kind == "postgresql":
                db: Any = request.getfixturevalue("pg_source")
                cfg, locked = pg_config(http, db, "stall"), pg_locked(db)
            else:
                db = request.getfixturevalue("mysql_source")
                cfg, locked = mysql_config(http, db, "stall"), mysql_locked(db)
            with locked:
                eid = trigger(http, cfg)["id"]
                second, _ = wait_until(http, cfg, eid, {"IN_PROGRESS"}, attempt=2)
                # Attempt 2 runs; why attempt 1 ended is in the details meanwhile.
                assert second["runs"][-1]["errorMessage"] == f"{stalled}; attempt 1 of 2"
                body, seen = wait_until(http, cfg, eid, DONE)
            run = body["runs"][-1]
            assert (run["status"], run["attempt"], run["file"]) == ("FAILED", 2, None)
            assert run["errorMessage"] == f"{stalled}; attempt 2 of 2"
            attempts = [s for s in seen if s[0] != "PENDING"]  # PENDING lasts a poll or less
            assert attempts == [("IN_PROGRESS", 2), ("FAILED", 2)], seen
    finally:
        stop_server(server)
    assert_clean_log(server.log())


def test_sigterm_stops_the_server_within_the_grace_and_gives_hanging_runs_back(
    tmp_path: Path, pg_source: PgDatabase, mysql_source: MysqlDatabase
) -> None:
    """Two runs stuck in driver calls and a /test stuck on a port that never answers:
    SIGTERM still ends the process within the grace (plus a margin), and the runs are back in
    the queue for the next server (attempt 2), not lost and not failed."""
    grace = 3
    env = {"EGRESS_SHUTDOWN_GRACE_S": str(grace)}
    server = start_server(tmp_path, env)
    with silent_listener() as (port, reached), api(server) as http:
        silent = connection(
            http,
            "silent",
            "mysql",
            {
                "host": "127.0.0.1",
                "port": port,
                "database": "d",
                "user": "u",
                "connect_timeout": 300,
            },
        )
        cfgs = [pg_config(http, pg_source, "term_pg"), mysql_config(http, mysql_source, "term_my")]
        with pg_locked(pg_source), mysql_locked(mysql_source):
            runs = [(cfg, trigger(http, cfg)["id"]) for cfg in cfgs]
            for cfg, eid in runs:
                wait_until(http, cfg, eid, {"IN_PROGRESS"})

            answers: list[httpx.Response] = []
            test_call = threading.Thread(
                target=lambda: answers.append(
                    server.client().post(f"{API}/connections/{silent}/test")
                ),
                daemon=True,
            )
            test_call.start()
            assert reached.wait(10), "the /test request never reached the silent port"
            asked = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            try:
                server.process.wait(timeout=grace + 15)
            except Exception:
                server.process.kill()
                raise
            took = time.monotonic() - asked
    assert took < grace + 5, f"SIGTERM took {took:.1f}s with a grace of {grace}s"
    # The request still running at the end of the grace was answered, not dropped.
    test_call.join(5)
    assert [a.status_code for a in answers] == [503], [a.text for a in answers]
    after = start_server(tmp_path, args=("--no-worker",))
    try:
        with api(after) as http:
            for cfg, eid in runs:
                run = details(http, cfg, eid)["runs"][-1]
                assert (run["status"], run["attempt"], run["file"]) == ("PENDING", 2, None), run
            for cfg, eid in runs:
                http.post(f"{CONFIGS}/{cfg}/executions/{eid}/cancel")
    finally:
        stop_server(after)
    log = server.log()
    assert "Traceback" not in log, log[-4000:]
    assert " 500 " not in log, log[-4000:]
