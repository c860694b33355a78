"""Who is woken (``NOTIFY egress_runs``, PostgreSQL) when a finish releases a held run: nobody
when it released one run for a worker slot that claims again at once (issue 19's drain), the
listening workers when nothing will claim after it (a watchdog's take-over) or when an API
cancel releases it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from egress.db.executions import ExecutionRepo
from egress.db.run_queue import ClaimedRun, Outcome, RunQueue
from egress.db.transitions import RUNS_CHANNEL
from egress.domain.status import RunStatus
from tests.conftest import PgDatabase
from tests.integration.test_repositories import Repos
from tests.support.factories import BARE_SPEC

T0 = datetime(2026, 5, 28, 14, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
MARK = "test-mark"


@pytest.fixture
def repos(pg_migrated: str, pg_factory: Any) -> Repos:
    db: PgDatabase = pg_factory("egress_meta", pg_migrated)
    r = Repos(db.sqlalchemy_url)
    r.executions = ExecutionRepo(r.engine, max_runs_per_workspace=1)
    r.queue = RunQueue(r.engine, max_runs_per_workspace=1)
    return r


def _listener(repos: Repos) -> psycopg.Connection[Any]:
    url = repos.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(f"LISTEN {RUNS_CHANNEL}")
    return conn


def _heard_before_mark(listener: psycopg.Connection[Any], repos: Repos) -> list[str]:
    """The payloads of the wake-ups committed so far: a marker sent now comes after all of
    them (PostgreSQL delivers notifications in commit order), so no wait can miss one."""
    with repos.engine.begin() as conn:
        conn.exec_driver_sql(f"SELECT pg_notify('{RUNS_CHANNEL}', '{MARK}')")
    heard = []
    for note in listener.notifies(timeout=30):
        if note.payload == MARK:
            return heard
        heard.append(note.payload)
    raise AssertionError("the marker never arrived")


def _held_behind_one(repos: Repos) -> tuple[str, str, str, ClaimedRun]:
    """A workspace at its limit of one: a claimed run, and a held one waiting for its slot."""
    ws = repos.workspaces.ensure_workspace("a")
    first, held = (repos.configuration(ws, name) for name in ("first", "held"))
    repos.executions.create(ws, first, BARE_SPEC, "api", T0)
    ex, _ = repos.executions.create(ws, held, BARE_SPEC, "api", T0 + timedelta(seconds=1))
    assert ex.latest.status is RunStatus.ON_HOLD
    claimed = repos.queue.claim("w", LEASE, T0)
    assert claimed is not None
    return ws, held, ex.id, claimed


def test_a_slot_that_claims_next_releases_one_held_run_without_waking_anyone(
    repos: Repos,
) -> None:
    ws, held, ex, claimed = _held_behind_one(repos)
    listener = _listener(repos)
    assert repos.queue.finish(claimed, Outcome(RunStatus.COMPLETED, 1), T0) is RunStatus.COMPLETED
    assert repos.executions.get(ws, held, ex).latest.status is RunStatus.PENDING
    assert _heard_before_mark(listener, repos) == []
    # The slot's next claim takes it.
    again = repos.queue.claim("w", LEASE, T0)
    assert again is not None and again.execution_id == ex


def test_a_take_over_wakes_the_workers_for_the_run_it_released(repos: Repos) -> None:
    ws, held, ex, claimed = _held_behind_one(repos)
    listener = _listener(repos)
    stopped = Outcome.stopped(RunStatus.CANCELLED, 0)
    assert repos.queue.finish(claimed, stopped, T0, claiming_next=False) is RunStatus.CANCELLED
    assert repos.executions.get(ws, held, ex).latest.status is RunStatus.PENDING
    assert _heard_before_mark(listener, repos) == [""]


def test_a_cancel_through_the_api_wakes_the_workers_for_the_run_it_released(
    repos: Repos,
) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    first, held = (repos.configuration(ws, name) for name in ("first", "held"))
    queued, _ = repos.executions.create(ws, first, BARE_SPEC, "api", T0)
    ex, _ = repos.executions.create(ws, held, BARE_SPEC, "api", T0 + timedelta(seconds=1))
    listener = _listener(repos)
    repos.executions.cancel(ws, first, queued.id, T0)
    assert repos.executions.get(ws, held, ex.id).latest.status is RunStatus.PENDING
    assert _heard_before_mark(listener, repos) == [""]
