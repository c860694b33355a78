"""Cancel, on-hold ordering, progress and graceful shutdown with a real worker.

The source is a PostgreSQL view that sleeps a little per row, so a run stays IN_PROGRESS long
enough to be watched, cancelled or interrupted. Metadata runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import itertools
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from egress.container import Container
from egress.db.executions import ExecutionRecord
from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.errors import Conflict
from egress.domain.paging import PageRequest
from egress.domain.plan import ReadPlan
from egress.domain.status import RunStatus
from egress.sources import Source, SourceError, open_source
from egress.worker.loop import RELEASE_WAIT_S
from tests.conftest import MysqlDatabase, PgDatabase, make_settings
from tests.support.factories import submitted_configuration
from tests.support.policy import files_root, policy_for

SLOW_ROWS = 40_000


@pytest.fixture
def slow_source(pg_db: PgDatabase) -> PgDatabase:
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE fast AS SELECT g AS id FROM generate_series(1, 50) g")
        # 5 ms of sleep every 100 rows (pg_sleep is ~1 ms grained): a run takes ~2-3 s.
        conn.execute(
            "CREATE VIEW slow AS SELECT g AS id,"
            " CASE WHEN g % 100 = 0 THEN pg_sleep(0.005)::text END AS pause"
            f" FROM generate_series(1, {SLOW_ROWS}) g"
        )
    return pg_db


@pytest.fixture
def setup(container: Container, slow_source: PgDatabase) -> Callable[[str], tuple[str, str]]:
    ws = container.workspaces.ensure_workspace("t")
    conn = container.connections.create(
        ws,
        "src",
        "postgresql",
        {"host": "127.0.0.1", "port": 5432, "database": slow_source.name, "user": "postgres"},
        None,
    )
    container.services.catalog.discover(ws, conn.id)
    templates = {
        t.name: t.id for t in container.templates.list_page(ws, conn.id, PageRequest(0, 50)).items
    }

    counter = itertools.count()

    def make(table: str) -> tuple[str, str]:
        record_id = submitted_configuration(
            container, ws, templates[f"public.{table}"], f"cfg_{table}_{next(counter)}"
        )
        return ws, record_id

    return make


@pytest.fixture
def worker(container: Container) -> Iterator[object]:
    w = container.worker(name="test")
    w.start()
    yield w
    w.stop(0)


def _get(c: Container, ws: str, cfg: str, eid: str) -> ExecutionRecord:
    return c.executions.get(ws, cfg, eid)


def _wait(
    c: Container,
    ws: str,
    cfg: str,
    eid: str,
    pred: Callable[[ExecutionRecord], bool],
    timeout: float = 30,
) -> ExecutionRecord:
    deadline = time.monotonic() + timeout
    while True:
        ex = _get(c, ws, cfg, eid)
        if pred(ex):
            return ex
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; runs: {[(r.status, r.attempt) for r in ex.runs]}")
        time.sleep(0.02)


def _objects(c: Container) -> list[str]:
    return [o.key for o in c.storage.list()]


def test_cancel_pending_and_on_hold_end_at_once(
    container: Container, setup: Callable[[str], tuple[str, str]]
) -> None:
    ws, cfg = setup("fast")
    first, _ = container.services.executions.trigger(ws, cfg, {})
    second, _ = container.services.executions.trigger(ws, cfg, {})
    third, _ = container.services.executions.trigger(ws, cfg, {})
    assert [first.latest.status, second.latest.status, third.latest.status] == [
        RunStatus.PENDING,
        RunStatus.ON_HOLD,
        RunStatus.ON_HOLD,
    ]
    held = container.services.executions.cancel(ws, cfg, second.id)
    assert held.latest.status is RunStatus.CANCELLED
    pending = container.services.executions.cancel(ws, cfg, first.id)
    assert pending.latest.status is RunStatus.CANCELLED
    # Cancelling the active run released the next held one, in order.
    assert _get(container, ws, cfg, third.id).latest.status is RunStatus.PENDING
    with pytest.raises(Conflict, match="CANCELLED"):
        container.services.executions.cancel(ws, cfg, first.id)


def test_cancel_in_progress_stops_within_two_seconds_and_publishes_nothing(
    container: Container, setup: Callable[[str], tuple[str, str]], worker: object
) -> None:
    ws, cfg = setup("slow")
    ex, _ = container.services.executions.trigger(ws, cfg, {})
    _wait(container, ws, cfg, ex.id, lambda e: (e.latest.processed or 0) > 0)
    asked = time.monotonic()
    container.services.executions.cancel(ws, cfg, ex.id)
    done = _wait(container, ws, cfg, ex.id, lambda e: e.latest.status is RunStatus.CANCELLED, 10)
    assert time.monotonic() - asked < 2.0
    assert done.latest.files == []
    assert _objects(container) == []  # neither a final nor a temporary file
    with pytest.raises(Conflict):
        container.services.executions.cancel(ws, cfg, ex.id)


def test_finished_run_cannot_be_cancelled(
    container: Container, setup: Callable[[str], tuple[str, str]], worker: object
) -> None:
    ws, cfg = setup("fast")
    ex, _ = container.services.executions.trigger(ws, cfg, {})
    _wait(container, ws, cfg, ex.id, lambda e: e.latest.status is RunStatus.COMPLETED)
    with pytest.raises(Conflict, match="COMPLETED"):
        container.services.executions.cancel(ws, cfg, ex.id)


def test_five_quick_triggers_run_one_at_a_time_in_trigger_order(
    container: Container, setup: Callable[[str], tuple[str, str]]
) -> None:
    ws, cfg = setup("fast")
    ids = [container.services.executions.trigger(ws, cfg, {})[0].id for _ in range(5)]
    statuses = [_get(container, ws, cfg, i).latest.status for i in ids]
    assert statuses == [RunStatus.PENDING] + [RunStatus.ON_HOLD] * 4
    w = container.worker(name="order")
    while w.run_once():
        pass
    runs = [_get(container, ws, cfg, i).latest for i in ids]
    assert [r.status for r in runs] == [RunStatus.COMPLETED] * 5
    started = [r.started_at for r in runs]
    assert started == sorted(started)
    assert all(r.record_count == 50 for r in runs)


def test_progress_is_visible_while_in_progress(
    container: Container, setup: Callable[[str], tuple[str, str]], worker: object
) -> None:
    ws, cfg = setup("slow")
    ex, _ = container.services.executions.trigger(ws, cfg, {})
    seen: list[int] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run = _get(container, ws, cfg, ex.id).latest
        if run.status is RunStatus.COMPLETED:
            break
        if run.status is RunStatus.IN_PROGRESS and run.processed:
            seen.append(run.processed)
        time.sleep(0.1)
    final = _get(container, ws, cfg, ex.id).latest
    assert final.status is RunStatus.COMPLETED and final.record_count == SLOW_ROWS
    assert len(set(seen)) >= 2, f"progress should move while running, saw {seen}"
    assert seen == sorted(seen) and max(seen) <= SLOW_ROWS


def test_shutdown_hands_running_runs_back_for_another_worker(
    container: Container, setup: Callable[[str], tuple[str, str]]
) -> None:
    ws, cfg = setup("slow")
    first = container.worker(name="leaving")
    first.start()
    ex, _ = container.services.executions.trigger(ws, cfg, {})
    _wait(container, ws, cfg, ex.id, lambda e: (e.latest.processed or 0) > 0)
    first.stop(0)  # no grace: release at once
    run = _get(container, ws, cfg, ex.id).latest
    assert run.status is RunStatus.PENDING
    assert run.attempt == 2
    assert _objects(container) == []
    second = container.worker(name="taking-over")
    assert second.run_once()
    run = _get(container, ws, cfg, ex.id).latest
    assert run.status is RunStatus.COMPLETED and run.record_count == SLOW_ROWS
    assert run.process_id is not None and "taking-over" in run.process_id


# ------------------------------------------------- driver calls that never return
HANG_ROWS = 20


def _in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def _poll(predicate: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _assert_interrupted(
    source: Source, thread: threading.Thread, errors: list[BaseException]
) -> None:
    asked = time.monotonic()
    source.interrupt()
    thread.join(10)
    assert not thread.is_alive(), "the driver call did not return after interrupt()"
    assert time.monotonic() - asked < 2.0
    assert len(errors) == 1, errors


def _pg_waiters(db: PgDatabase) -> int:
    with db.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE NOT l.granted AND d.datname = current_database()"
        ).fetchone()
    return int(str(row[0])) if row else 0


HANG_PLAN = ReadPlan(TableRef("public", "hang"), [ColumnInfo("id", "int32")])


@pytest.mark.parametrize("path", ["arrow", "copy"])
def test_interrupt_returns_a_postgresql_call_blocked_on_a_lock(
    pg_db: PgDatabase, tmp_path: Path, path: str
) -> None:
    with pg_db.connect() as conn:
        conn.execute(
            f"CREATE TABLE hang AS SELECT g::int AS id FROM generate_series(1, {HANG_ROWS}) g"
        )
    source = open_source(
        "postgresql",
        {"host": "127.0.0.1", "port": 5432, "database": pg_db.name, "user": "postgres"},
        {},
        policy_for(tmp_path),
    )
    call: Callable[[], object]
    if path == "arrow":
        call = lambda: list(source.read(HANG_PLAN, 10))  # noqa: E731
    else:
        call = lambda: source.copy_rows(HANG_PLAN, io.BytesIO(), lambda n: None)  # type: ignore[attr-defined]  # noqa: E731
    locker = psycopg.connect(pg_db.url)
    try:
        locker.execute("LOCK TABLE hang IN ACCESS EXCLUSIVE MODE")
        thread, errors = _in_thread(call)
        _poll(lambda: _pg_waiters(pg_db) > 0, "the read to wait on the lock")
        _assert_interrupted(source, thread, errors)
        # The server stopped the query as well: nothing waits on the lock any more.
        _poll(lambda: _pg_waiters(pg_db) == 0, "the server to cancel the query")
    finally:
        locker.rollback()
        locker.close()
    with pytest.raises(SourceError, match="interrupted"):
        list(source.read(HANG_PLAN, 10))  # an interrupted source stays interrupted


def test_interrupt_returns_a_mysql_read_blocked_on_a_table_lock(
    mysql_db: MysqlDatabase, tmp_path: Path
) -> None:
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE hang (id INT PRIMARY KEY)")
        cur.executemany("INSERT INTO hang VALUES (%s)", [(i,) for i in range(HANG_ROWS)])
    source = open_source("mysql", mysql_db.settings, mysql_db.secrets, policy_for(tmp_path))
    plan = ReadPlan(TableRef(mysql_db.name, "hang"), [ColumnInfo("id", "int32")])
    locker = mysql_db.connect()
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLES hang WRITE")
        thread, errors = _in_thread(lambda: list(source.read(plan, 10)))

        def waiting() -> bool:
            with locker.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM information_schema.PROCESSLIST"
                    " WHERE DB = %s AND STATE LIKE 'Waiting%%'",
                    (mysql_db.name,),
                )
                row = cur.fetchone()
            return bool(row and row[0])

        _poll(waiting, "the read to wait on the table lock")
        _assert_interrupted(source, thread, errors)
    finally:
        with locker.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        locker.close()


def test_interrupt_stops_a_sqlite_query_that_never_ends(tmp_path: Path) -> None:
    path = files_root(tmp_path) / f"{tmp_path.name}-forever.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE VIEW forever AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1"
            " FROM c) SELECT x AS id FROM c WHERE x < 0"
        )
    conn.close()
    source = open_source("sqlite", {"path": str(path)}, {}, policy_for(tmp_path))
    plan = ReadPlan(TableRef("main", "forever"), [ColumnInfo("id", "int64")])
    thread, errors = _in_thread(lambda: list(source.read(plan, 10)))
    _assert_interrupted(source, thread, errors)
    assert "interrupted" in str(errors[0])


def test_interrupt_stops_a_files_read_before_the_next_batch(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "t.csv").write_text("id\n" + "".join(f"{i}\n" for i in range(100)))
    source = open_source("files", {"url": folder.as_uri()}, {}, policy_for(tmp_path))
    batches = source.read(ReadPlan(TableRef(None, "t.csv"), [ColumnInfo("id", "int64")]), 10)
    assert next(batches).num_rows == 10
    source.interrupt()
    with pytest.raises(SourceError, match="interrupted"):
        next(batches)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never sends a byte: a MySQL connect to it
    blocks in the handshake, where no interrupt reaches (only its own timeout)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield int(server.getsockname()[1])
    server.close()
    for conn in accepted:
        conn.close()


def _silent_configuration(c: Container, port: int) -> tuple[str, str]:
    ws = c.workspaces.ensure_workspace("t")
    settings = {"host": "127.0.0.1", "port": port, "database": "d", "user": "u"}
    conn = c.connections.create(ws, "silent", "mysql", settings | {"connect_timeout": 300}, None)
    tpl = c.templates.create_custom(
        ws, conn.id, "t", TableRef("d", "t"), [ColumnInfo("id", "int64")], ["id"], None, None
    )
    return ws, submitted_configuration(c, ws, tpl.id, "silent")


def test_a_stalled_run_whose_driver_ignores_the_interrupt_is_taken_over(
    tmp_path: Path, metadata_url: str, silent_port: int
) -> None:
    """The watchdog records the stall itself when the run's thread stays stuck: each attempt
    fails at the stall limit (+ the takeover), and the run ends FAILED after the last."""
    c = Container.build(
        make_settings(
            tmp_path,
            metadata_url,
            poll_s=0.05,
            heartbeat_s=0.2,
            source_stall_s=1,
            max_attempts=2,
            worker_concurrency=2,
        )
    )
    ws, cfg = _silent_configuration(c, silent_port)
    w = c.worker(name="stall")
    w.start()
    try:
        ex, _ = c.services.executions.trigger(ws, cfg, {})
        done = _wait(c, ws, cfg, ex.id, lambda e: e.latest.status is RunStatus.FAILED, 20)
        run = done.latest
        assert run.attempt == 2
        assert run.error_message == (
            "the source sent no data for 1 s (EGRESS_SOURCE_STALL_S); attempt 2 of 2"
        )
    finally:
        w.stop(0)
        c.engine.dispose()


def test_stop_gives_back_a_run_whose_driver_ignores_the_interrupt(
    container: Container, silent_port: int
) -> None:
    ws, cfg = _silent_configuration(container, silent_port)
    w = container.worker(name="leaving")
    w.start()
    ex, _ = container.services.executions.trigger(ws, cfg, {})
    _wait(container, ws, cfg, ex.id, lambda e: e.latest.status is RunStatus.IN_PROGRESS)
    asked = time.monotonic()
    w.stop(0)
    assert time.monotonic() - asked < RELEASE_WAIT_S + 2.0
    run = _get(container, ws, cfg, ex.id).latest
    assert (run.status, run.attempt) == (RunStatus.PENDING, 2)
