"""The transition contract: the real repository operations, on SQLite and PostgreSQL, only ever
make changes the domain's transition table allows, and the outbox (``run_events``) records
exactly the changes that happened, in the transaction that made them."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from egress.db.run_queue import ClaimedRun, Outcome
from egress.db.tables import run_events, runs
from egress.db.transitions import transition
from egress.domain.status import INITIAL, IllegalTransition, RunKind, RunStatus, can_transition
from tests.integration.test_repositories import Repos
from tests.support.factories import BARE_SPEC

S = RunStatus
T0 = datetime(2026, 5, 28, 14, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


@dataclass
class Contract:
    """Runs every operation through ``step``, checking each against the table and outbox."""

    repos: Repos
    seen: set[tuple[S | None, S]] = field(default_factory=set)
    clock: datetime = T0

    def statuses(self) -> dict[str, S]:
        with self.repos.engine.connect() as conn:
            return {r.id: S(r.status) for r in conn.execute(sa.select(runs.c.id, runs.c.status))}

    def last_event(self) -> int:
        with self.repos.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(run_events.c.id), 0))
                ).scalar_one()
            )

    def step(self, operation: Callable[[datetime], Any], later: timedelta = timedelta(0)) -> Any:
        """Run ``operation`` at a moment ``later`` (plus a second) after the previous one."""
        self.clock += later + timedelta(seconds=1)
        before, mark = self.statuses(), self.last_event()
        result = operation(self.clock)
        after = self.statuses()
        with self.repos.engine.connect() as conn:
            events = conn.execute(
                sa.select(run_events).where(run_events.c.id > mark).order_by(run_events.c.id)
            ).all()
        chains: dict[str, list[tuple[S | None, S]]] = {}
        for e in events:
            assert e.at == self.clock
            start = None if e.from_status is None else S(e.from_status)
            chains.setdefault(e.run_id, []).append((start, S(e.to_status)))
        changed = {rid for rid, status in after.items() if before.get(rid) != status}
        # Every real change is in the outbox, and every outbox row belongs to one.
        assert set(chains) == changed
        for rid, chain in chains.items():
            # The chain of recorded changes leads from what the run was to what it is.
            assert chain[0][0] == before.get(rid)
            assert chain[-1][1] == after[rid]
            for (_, to), (start, _) in itertools.pairwise(chain):
                assert to == start
            for start, to in chain:
                assert can_transition(start, to) if start is not None else to in INITIAL
                self.seen.add((start, to))
        return result


@pytest.fixture
def contract(metadata_url: str) -> Contract:
    return Contract(Repos(metadata_url))


def test_every_operation_obeys_the_table_and_fills_the_outbox(contract: Contract) -> None:
    r = contract.repos
    ws = r.workspaces.ensure_workspace("a")
    cfg = r.configuration(ws, "c")
    q, ex = r.queue, r.executions

    def trigger(now: datetime) -> str:
        return ex.create(ws, cfg, BARE_SPEC, "api", now)[0].id

    def claim(now: datetime) -> ClaimedRun:
        claimed = q.claim("w", LEASE, now)
        assert claimed is not None
        return claimed

    def finish(claimed: ClaimedRun, status: S) -> Callable[[datetime], bool]:
        return lambda now: q.finish(
            claimed, Outcome(status, 1 if status is S.COMPLETED else 0), now
        )

    # Finish each way; each end releases the next held run.
    first = contract.step(trigger)  # PENDING
    held = [contract.step(trigger) for _ in range(4)]  # ON_HOLD behind it
    for status, _ in zip((S.COMPLETED, S.COMPLETED_NO_DATA, S.FAILED), held, strict=False):
        claimed = contract.step(claim)
        contract.step(lambda now, c=claimed: q.heartbeat(c.run_id, c.lease_token, 3, LEASE, now))
        assert contract.step(finish(claimed, status))
    # Cancel an IN_PROGRESS run: asked to stop (no change), then its worker ends it.
    claimed = contract.step(claim)
    contract.step(lambda now: ex.cancel(ws, cfg, held[2], now))
    assert contract.step(finish(claimed, S.CANCELLED))
    # Cancel PENDING (releasing the held one) and ON_HOLD.
    pending = held[3]
    on_hold = contract.step(trigger)
    contract.step(lambda now: ex.cancel(ws, cfg, on_hold, now))
    contract.step(lambda now: ex.cancel(ws, cfg, pending, now))
    # Each of these ends an attempt (1, 2, 3): release at shutdown, a failed attempt, a lost
    # worker requeued by the reaper; the fourth, lost too, fails.
    contract.step(lambda now: ex.rerun(ws, cfg, first, now))
    claimed = contract.step(claim)
    assert contract.step(lambda now: q.release(claimed, now)) is S.PENDING
    claimed = contract.step(claim)
    assert contract.step(lambda now: q.fail_attempt(claimed, now, 3, "stalled")) is S.PENDING
    contract.step(claim)
    assert contract.step(lambda now: q.reap(now, 4), later=LEASE).requeued == 1
    zombie = contract.step(claim)
    assert contract.step(lambda now: q.reap(now, 4), later=LEASE).failed == 1
    # A zombie's finish changes nothing.
    assert not contract.step(finish(zombie, S.COMPLETED))
    # The reaper ends a lost run whose cancel was requested CANCELLED.
    contract.step(lambda now: ex.rerun(ws, cfg, first, now))
    contract.step(claim)
    contract.step(lambda now: ex.cancel(ws, cfg, first, now))
    assert contract.step(lambda now: q.reap(now, 3), later=LEASE).cancelled == 1

    # Every edge of the table was walked, and every way a run starts.
    table = {(a, b) for a in S for b in S if can_transition(a, b)}
    assert contract.seen == table | {(None, s) for s in INITIAL}


def test_the_guarded_transition_refuses_what_the_table_forbids(contract: Contract) -> None:
    r = contract.repos
    ws = r.workspaces.ensure_workspace("a")
    cfg = r.configuration(ws, "c")
    execution, _ = r.executions.create(ws, cfg, BARE_SPEC, "api", T0)
    run_id = execution.latest.id
    mark = contract.last_event()
    with r.engine.begin() as conn, pytest.raises(IllegalTransition, match="PENDING to COMPLETED"):
        transition(conn, run_id, S.PENDING, S.COMPLETED, T0)
    # A change from a status the run is not in matches nothing and records nothing.
    with r.engine.begin() as conn:
        assert transition(conn, run_id, S.ON_HOLD, S.PENDING, T0) is None
    assert contract.last_event() == mark
    assert r.executions.get(ws, cfg, execution.id).latest.status is S.PENDING


def test_runs_are_extract_runs_and_a_rerun_keeps_the_kind(contract: Contract) -> None:
    r = contract.repos
    ws = r.workspaces.ensure_workspace("a")
    cfg = r.configuration(ws, "c")
    execution, _ = r.executions.create(ws, cfg, BARE_SPEC, "api", T0)
    claimed = r.queue.claim("w", LEASE, T0)
    assert claimed is not None and claimed.kind is RunKind.EXTRACT
    assert claimed.spec == BARE_SPEC
    assert r.queue.finish(claimed, Outcome(S.FAILED, 0, "x"), T0)
    again, _ = r.executions.rerun(ws, cfg, execution.id, T0)
    assert [run.kind for run in again.runs] == [RunKind.EXTRACT, RunKind.EXTRACT]
