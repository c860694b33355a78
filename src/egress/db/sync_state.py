"""What a configuration's runs say about its sync (seed 001's ``last_sync``, ``status``,
``error_text``) and its backfill's progress, read for many configurations at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from egress.db.tables import executions, runs
from egress.domain.schedules import BACKFILL, backfill_plan
from egress.domain.status import ACTIVE, RunStatus

_SUCCESS = [RunStatus.COMPLETED.value, RunStatus.COMPLETED_NO_DATA.value]
# A cancelled run says nothing about the sync's health: it is neither a success nor an error.
_FINISHED = [*_SUCCESS, RunStatus.FAILED.value]
_UNFINISHED = [*(s.value for s in ACTIVE), RunStatus.ON_HOLD.value]


@dataclass(frozen=True)
class SyncFacts:
    last_sync: datetime | None = None  # completion of the latest successful run
    running: bool = False  # a run is PENDING or IN_PROGRESS
    failed: bool = False  # the latest finished run failed
    error_text: str | None = None  # its message


@dataclass(frozen=True)
class BackfillProgress:
    start: str
    windows_total: int
    windows_done: int
    windows_failed: int


def sync_facts(conn: Connection, cfg_ids: list[str]) -> dict[str, SyncFacts]:
    if not cfg_ids:
        return {}
    mine = runs.c.configuration_id.in_(cfg_ids)
    last_sync = dict(
        conn.execute(
            sa.select(runs.c.configuration_id, sa.func.max(runs.c.completed_at))
            .where(mine, runs.c.status.in_(_SUCCESS))
            .group_by(runs.c.configuration_id)
        ).all()
    )
    running = set(
        conn.execute(
            sa.select(runs.c.configuration_id)
            .where(mine, runs.c.status.in_([s.value for s in ACTIVE]))
            .distinct()
        ).scalars()
    )
    ranked = (
        sa.select(
            runs.c.configuration_id,
            runs.c.status,
            runs.c.error_message,
            sa.func.row_number()
            .over(
                partition_by=runs.c.configuration_id,
                order_by=(runs.c.completed_at.desc(), runs.c.id.desc()),
            )
            .label("n"),
        )
        .where(mine, runs.c.status.in_(_FINISHED))
        .subquery()
    )
    latest = {
        r.configuration_id: r for r in conn.execute(sa.select(ranked).where(ranked.c.n == 1)).all()
    }
    out: dict[str, SyncFacts] = {}
    for cfg_id in cfg_ids:
        row = latest.get(cfg_id)
        failed = row is not None and row.status == RunStatus.FAILED.value
        out[cfg_id] = SyncFacts(
            last_sync=last_sync.get(cfg_id),
            running=cfg_id in running,
            failed=failed,
            error_text=row.error_message if failed and row is not None else None,
        )
    return out


def _latest_runs(conn: Connection, cfg_id: str) -> list[tuple[datetime, datetime, str]]:
    """Each backfill execution's window and the status of its latest run."""
    latest_no = (
        sa.select(runs.c.execution_id, sa.func.max(runs.c.run_number).label("n"))
        .where(runs.c.configuration_id == cfg_id)
        .group_by(runs.c.execution_id)
        .subquery()
    )
    query = (
        sa.select(executions.c.due_at, executions.c.window_end, runs.c.status)
        .join(latest_no, latest_no.c.execution_id == executions.c.id)
        .join(
            runs,
            sa.and_(runs.c.execution_id == executions.c.id, runs.c.run_number == latest_no.c.n),
        )
        .where(executions.c.configuration_id == cfg_id, executions.c.schedule_id == BACKFILL)
    )
    return [(r.due_at, r.window_end, r.status) for r in conn.execute(query)]


@dataclass(frozen=True)
class BackfillState:
    busy: bool  # a window's run is queued or running: the next waits for it
    remaining: list[tuple[date, date]]  # windows not enqueued yet, oldest first
    progress: BackfillProgress


def backfill_state(
    conn: Connection, cfg_id: str, start: str, end: date, window: str
) -> BackfillState:
    """Where a backfill of ``[start, end)`` stands: windows covered by its executions (whatever
    their outcome), and the rest still to enqueue."""
    done = failed = 0
    busy = False
    covered: list[tuple[date, date]] = []
    for lo, hi, status in _latest_runs(conn, cfg_id):
        covered.append((lo.date(), hi.date()))
        busy = busy or status in _UNFINISHED
        done += status in _SUCCESS
        # Not retried by itself either way: a cancelled window counts as failed, so the
        # progress adds up (it was counted nowhere before 2026-12-04).
        failed += status in (RunStatus.FAILED.value, RunStatus.CANCELLED.value)
    remaining = backfill_plan(date.fromisoformat(start), end, window, covered)
    total = len(covered) + len(remaining)
    return BackfillState(busy, remaining, BackfillProgress(start, total, done, failed))
