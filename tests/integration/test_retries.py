"""Transient and terminal failures (issue 14 item 6), on each metadata database.

A transient failure puts the run back to PENDING with attempt + 1, not claimed before its
backoff is over; after the last attempt it is FAILED and retryable. A terminal failure fails
the run at once, not retryable. The clock is injected: the backoff is waited out by moving it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pymysql
import pytest
from obstore.exceptions import GenericError

from egress.container import Container
from egress.db.executions import RunRecord
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from tests.conftest import make_settings
from tests.support.factories import submitted_configuration
from tests.support.faults import Faults, FaultyStorage, from_driver, inject_source_faults

BASE_S = 10.0
LOST = "server closed the connection unexpectedly"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def c(tmp_path: Path, metadata_url: str, clock: Clock) -> Iterator[Container]:
    settings = make_settings(
        tmp_path, metadata_url, max_attempts=3, retry_base_s=BASE_S, retry_max_s=1000
    )
    container = Container.build(settings, clock=clock)
    yield container
    container.engine.dispose()


def _configuration(c: Container, tmp_path: Path) -> tuple[str, str]:
    db = tmp_path / "source.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(1, "a"), (2, "b")])
    ws = c.workspaces.ensure_workspace("t")
    conn_rec = c.connections.create(ws, "src", "sqlite", {"path": str(db)}, None)
    c.services.catalog.discover(ws, conn_rec.id)
    tpl = c.templates.list_page(ws, conn_rec.id, PageRequest(0, 10)).items[0]
    return ws, submitted_configuration(c, ws, tpl.id, "retried")


def _run(c: Container, ws: str, cfg: str, eid: str) -> RunRecord:
    return c.executions.get(ws, cfg, eid).latest


def test_a_transient_source_failure_is_retried_after_its_backoff_then_succeeds(
    c: Container, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = Faults(from_driver(LOST, psycopg.OperationalError(LOST)))
    inject_source_faults(monkeypatch, faults)
    ws, cfg = _configuration(c, tmp_path)
    ex, _ = c.services.executions.trigger(ws, cfg, {})
    worker = c.worker()
    assert worker.run_once()
    run = _run(c, ws, cfg, ex.id)
    assert (run.status, run.attempt, run.retryable) == (RunStatus.PENDING, 2, True)
    assert run.error_message == f"{LOST}; attempt 1 of 3"
    # Equal jitter: the first retry waits between half and all of the base delay.
    assert run.next_attempt_at is not None
    wait = run.next_attempt_at - clock.now
    assert timedelta(seconds=BASE_S / 2) <= wait <= timedelta(seconds=BASE_S)
    assert not worker.run_once(), "claimed before its backoff was over"
    clock.now = run.next_attempt_at
    assert worker.run_once()
    run = _run(c, ws, cfg, ex.id)
    assert (run.status, run.attempt, run.record_count) == (RunStatus.COMPLETED, 2, 2)
    assert run.next_attempt_at is None
    assert faults.calls == 2


def test_a_transient_failure_on_every_attempt_fails_the_run_retryable(
    c: Container, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = "Deadlock found when trying to get lock"
    deadlock = from_driver(message, pymysql.err.OperationalError(1213, message))
    inject_source_faults(monkeypatch, Faults(deadlock, deadlock, deadlock))
    ws, cfg = _configuration(c, tmp_path)
    ex, _ = c.services.executions.trigger(ws, cfg, {})
    worker = c.worker()
    seen = []
    waits = []
    for _ in range(3):
        assert worker.run_once()
        run = _run(c, ws, cfg, ex.id)
        seen.append((run.status, run.attempt, run.retryable))
        if run.next_attempt_at is not None:
            waits.append((run.next_attempt_at - clock.now).total_seconds())
            clock.now = run.next_attempt_at
    assert seen == [
        (RunStatus.PENDING, 2, True),
        (RunStatus.PENDING, 3, True),
        (RunStatus.FAILED, 3, True),
    ]
    # The backoff doubles: attempt 2 waits within [base/2, base], attempt 3 [base, 2 base].
    assert BASE_S / 2 <= waits[0] <= BASE_S <= waits[1] <= 2 * BASE_S
    run = _run(c, ws, cfg, ex.id)
    assert run.error_message == f"{message}; attempt 3 of 3"
    assert run.next_attempt_at is None and run.files == []


@pytest.mark.parametrize(
    "fault",
    [
        from_driver("no t", psycopg.errors.UndefinedTable('relation "t" does not exist')),
        from_driver("denied", psycopg.errors.InsufficientPrivilege("permission denied")),
        from_driver("no t", pymysql.err.ProgrammingError(1146, "Table 'd.t' doesn't exist")),
        from_driver("no t", sqlite3.OperationalError("no such table: t")),
        TypeError("unsupported type"),
    ],
    ids=["missing-table", "permission-denied", "mysql-missing-table", "sqlite", "type-error"],
)
def test_a_terminal_failure_fails_the_run_at_once(
    c: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: Exception
) -> None:
    faults = Faults(fault)
    inject_source_faults(monkeypatch, faults)
    ws, cfg = _configuration(c, tmp_path)
    ex, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    run = _run(c, ws, cfg, ex.id)
    assert (run.status, run.attempt, run.retryable) == (RunStatus.FAILED, 1, False)
    assert run.error_message is not None and str(fault) in run.error_message
    assert run.next_attempt_at is None
    assert faults.calls == 1


def test_a_store_failing_with_a_5xx_while_publishing_is_retried_and_publishes_once(
    c: Container, clock: Clock, tmp_path: Path
) -> None:
    unavailable = GenericError(
        "Generic S3 error: Server returned non-2xx status code: 503 Service Unavailable"
    )
    faults = Faults(unavailable)
    real = c.storage
    c.storage = FaultyStorage(real, faults)  # type: ignore[assignment]
    ws, cfg = _configuration(c, tmp_path)
    ex, _ = c.services.executions.trigger(ws, cfg, {})
    worker = c.worker()
    assert worker.run_once()
    run = _run(c, ws, cfg, ex.id)
    assert (run.status, run.attempt, run.retryable) == (RunStatus.PENDING, 2, True)
    assert run.error_message is not None and "503 Service Unavailable" in run.error_message
    assert run.next_attempt_at is not None
    clock.now = run.next_attempt_at
    assert worker.run_once()
    run = _run(c, ws, cfg, ex.id)
    assert (run.status, run.record_count) == (RunStatus.COMPLETED, 2)
    assert b"".join(real.stream(run.files[0].storage_key)).count(b"\n") == 3  # header + 2 rows
    # Nothing of the failed attempt is left: only the run's file and its manifest.
    keys = sorted(o.key for o in real.list())
    assert keys == sorted([run.files[0].storage_key, run.manifest_key])


def test_a_cancel_while_waiting_for_a_retry_ends_the_run(
    c: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inject_source_faults(monkeypatch, Faults(from_driver("timed out", TimeoutError())))
    ws, cfg = _configuration(c, tmp_path)
    ex, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    assert _run(c, ws, cfg, ex.id).status is RunStatus.PENDING
    c.executions.cancel(ws, cfg, ex.id, c.clock())
    run = _run(c, ws, cfg, ex.id)
    assert (run.status, run.next_attempt_at) == (RunStatus.CANCELLED, None)
