"""Cancel, on-hold ordering, progress and graceful shutdown with a real worker.

The source is a PostgreSQL view that sleeps a little per row, so a run stays IN_PROGRESS long
enough to be watched, cancelled or interrupted. Metadata runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator

import pytest

from egress.container import Container
from egress.db.executions import ExecutionRecord
from egress.domain.errors import Conflict
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from egress.services import catalog, executions
from tests.conftest import PgDatabase
from tests.support.factories import submitted_configuration

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
    catalog.discover(container, ws, conn.id)
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
    first, _ = executions.trigger(container, ws, cfg, {})
    second, _ = executions.trigger(container, ws, cfg, {})
    third, _ = executions.trigger(container, ws, cfg, {})
    assert [first.latest.status, second.latest.status, third.latest.status] == [
        RunStatus.PENDING,
        RunStatus.ON_HOLD,
        RunStatus.ON_HOLD,
    ]
    held = executions.cancel(container, ws, cfg, second.id)
    assert held.latest.status is RunStatus.CANCELLED
    pending = executions.cancel(container, ws, cfg, first.id)
    assert pending.latest.status is RunStatus.CANCELLED
    # Cancelling the active run released the next held one, in order.
    assert _get(container, ws, cfg, third.id).latest.status is RunStatus.PENDING
    with pytest.raises(Conflict, match="CANCELLED"):
        executions.cancel(container, ws, cfg, first.id)


def test_cancel_in_progress_stops_within_two_seconds_and_publishes_nothing(
    container: Container, setup: Callable[[str], tuple[str, str]], worker: object
) -> None:
    ws, cfg = setup("slow")
    ex, _ = executions.trigger(container, ws, cfg, {})
    _wait(container, ws, cfg, ex.id, lambda e: (e.latest.processed or 0) > 0)
    asked = time.monotonic()
    executions.cancel(container, ws, cfg, ex.id)
    done = _wait(container, ws, cfg, ex.id, lambda e: e.latest.status is RunStatus.CANCELLED, 10)
    assert time.monotonic() - asked < 2.0
    assert done.latest.files == []
    assert _objects(container) == []  # neither a final nor a temporary file
    with pytest.raises(Conflict):
        executions.cancel(container, ws, cfg, ex.id)


def test_finished_run_cannot_be_cancelled(
    container: Container, setup: Callable[[str], tuple[str, str]], worker: object
) -> None:
    ws, cfg = setup("fast")
    ex, _ = executions.trigger(container, ws, cfg, {})
    _wait(container, ws, cfg, ex.id, lambda e: e.latest.status is RunStatus.COMPLETED)
    with pytest.raises(Conflict, match="COMPLETED"):
        executions.cancel(container, ws, cfg, ex.id)


def test_five_quick_triggers_run_one_at_a_time_in_trigger_order(
    container: Container, setup: Callable[[str], tuple[str, str]]
) -> None:
    ws, cfg = setup("fast")
    ids = [executions.trigger(container, ws, cfg, {})[0].id for _ in range(5)]
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
    ex, _ = executions.trigger(container, ws, cfg, {})
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
    ex, _ = executions.trigger(container, ws, cfg, {})
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
