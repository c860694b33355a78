"""EGRESS_MAX_RUNS_PER_WORKSPACE: runs beyond the workspace's limit are not refused, they wait
ON_HOLD saying why, and start in order as slots free up; other workspaces are not affected.
On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from egress.db.executions import ExecutionRepo
from egress.db.run_queue import Outcome, RunQueue
from egress.domain.status import CONFIGURATION_HOLD_REASON, RunStatus
from tests.integration.test_repositories import Repos
from tests.support.factories import BARE_SPEC

T0 = datetime(2026, 5, 28, 14, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
FULL = (
    "waiting for a free slot: the workspace has 2 runs queued or running "
    "(EGRESS_MAX_RUNS_PER_WORKSPACE)"
)


@pytest.fixture
def repos(metadata_url: str) -> Repos:
    r = Repos(metadata_url)
    r.executions = ExecutionRepo(r.engine, max_runs_per_workspace=2)
    r.queue = RunQueue(r.engine, max_runs_per_workspace=2)
    return r


def _state(repos: Repos, ws: str, cfg: str, ex: str) -> tuple[RunStatus, str | None]:
    latest = repos.executions.get(ws, cfg, ex).latest
    return latest.status, latest.hold_reason


def test_runs_beyond_the_workspace_limit_wait_on_hold_with_the_reason(repos: Repos) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    other = repos.workspaces.ensure_workspace("b")
    cfgs = [repos.configuration(ws, f"c{i}") for i in range(4)]
    exs = [
        repos.executions.create(ws, cfg, BARE_SPEC, "api", T0 + timedelta(seconds=i))[0].id
        for i, cfg in enumerate(cfgs)
    ]
    # Behind its own configuration's run: the reason that always existed.
    again, _ = repos.executions.create(ws, cfgs[0], BARE_SPEC, "api", T0 + timedelta(seconds=9))
    states = [_state(repos, ws, c, e) for c, e in zip(cfgs, exs, strict=True)]
    assert states == [
        (RunStatus.PENDING, None),
        (RunStatus.PENDING, None),
        (RunStatus.ON_HOLD, FULL),
        (RunStatus.ON_HOLD, FULL),
    ]
    assert _state(repos, ws, cfgs[0], again.id) == (RunStatus.ON_HOLD, CONFIGURATION_HOLD_REASON)
    # Another workspace has slots of its own.
    elsewhere, _ = repos.executions.create(
        other, repos.configuration(other, "x"), BARE_SPEC, "api", T0
    )
    assert elsewhere.latest.status is RunStatus.PENDING

    # Claimed in queue order; the held ones are never claimed while held.
    first = repos.queue.claim("w", LEASE, T0)
    second = repos.queue.claim("w", LEASE, T0)
    third = repos.queue.claim("w", LEASE, T0)
    assert first is not None and second is not None and third is not None
    assert {first.execution_id, second.execution_id, third.execution_id} == {
        exs[0],
        exs[1],
        elsewhere.id,
    }
    assert repos.queue.claim("w", LEASE, T0) is None

    # One ends: the oldest held run of the workspace takes the slot, the next keeps waiting.
    run0 = first if first.execution_id == exs[0] else second
    assert repos.queue.finish(run0, Outcome(RunStatus.COMPLETED, 1), T0 + timedelta(seconds=20))
    assert _state(repos, ws, cfgs[2], exs[2]) == (RunStatus.PENDING, None)
    assert _state(repos, ws, cfgs[3], exs[3]) == (RunStatus.ON_HOLD, FULL)
    # cfg 0's second run is free of its configuration now, but the workspace is full again.
    assert _state(repos, ws, cfgs[0], again.id) == (RunStatus.ON_HOLD, FULL)

    # Cancelling a queued run frees its slot as well: the oldest waiting run goes next.
    repos.executions.cancel(ws, cfgs[2], exs[2], T0 + timedelta(seconds=21))
    assert _state(repos, ws, cfgs[3], exs[3]) == (RunStatus.PENDING, None)
    assert _state(repos, ws, cfgs[0], again.id) == (RunStatus.ON_HOLD, FULL)


def test_a_freed_slot_goes_to_the_oldest_run_waiting_for_nothing_else(repos: Repos) -> None:
    """One slot frees at a time: it goes past an older run still behind its configuration's
    active run, and of a configuration's held runs to the first."""
    ws = repos.workspaces.ensure_workspace("a")
    a, b, c, d = (repos.configuration(ws, n) for n in "abcd")

    def trigger(cfg: str, second: int) -> str:
        return repos.executions.create(ws, cfg, BARE_SPEC, "api", T0 + timedelta(seconds=second))[
            0
        ].id

    a1, b1, a2, c1, d1, d2 = (trigger(cfg, i) for i, cfg in enumerate([a, b, a, c, d, d]))
    running = {r.execution_id: r for r in (repos.queue.claim("w", LEASE, T0) for _ in "ab") if r}
    assert set(running) == {a1, b1}

    def finish(execution_id: str, second: int) -> None:
        done = Outcome(RunStatus.COMPLETED, 1)
        assert repos.queue.finish(running[execution_id], done, T0 + timedelta(seconds=second))

    finish(b1, 20)  # a2 is older than c1, but a1 still runs
    assert _state(repos, ws, a, a2) == (RunStatus.ON_HOLD, CONFIGURATION_HOLD_REASON)
    assert _state(repos, ws, c, c1) == (RunStatus.PENDING, None)
    assert _state(repos, ws, d, d1) == (RunStatus.ON_HOLD, FULL)

    finish(a1, 21)  # a2 is free of its configuration now, and the oldest
    assert _state(repos, ws, a, a2) == (RunStatus.PENDING, None)
    claimed = repos.queue.claim("w", LEASE, T0)
    assert claimed is not None
    running[claimed.execution_id] = claimed
    finish(claimed.execution_id, 22)  # of d's two held runs, the first
    assert _state(repos, ws, d, d1) == (RunStatus.PENDING, None)
    assert _state(repos, ws, d, d2) == (RunStatus.ON_HOLD, CONFIGURATION_HOLD_REASON)
