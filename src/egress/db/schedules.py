"""Schedules and the state the scheduler advances; what a scheduler round reads.

A firing advances its schedule only if it still has the ``next_due_at`` the scheduler read,
checked with the row locked (``advance_schedules``), in the transaction that inserts the
execution: of any number of schedulers reading the same due schedule, one wins and the others
find it moved.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from egress.db.engine import Repository
from egress.db.sync_state import BackfillState, backfill_state
from egress.db.tables import executions, runs
from egress.db.tables import extraction_configurations as configs
from egress.db.tables import schedules as S
from egress.db.transitions import release_next, transition
from egress.domain.clock import Clock, utcnow
from egress.domain.schedules import BACKFILL, Slot
from egress.domain.status import ConfigStatus, RunStatus


@dataclass(frozen=True)
class ScheduleRecord:
    id: str
    cron: str
    timezone: str
    enabled: bool
    date_window: str | None
    next_due_at: datetime | None = None
    last_fired_at: datetime | None = None
    window_end: datetime | None = None
    gaps: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class DueSchedule:
    """A schedule a round found due, with what firing it needs of its configuration."""

    schedule: ScheduleRecord
    workspace_id: str
    configuration_id: str
    start_date: datetime | None


def _schedule(row: Row[Any]) -> ScheduleRecord:
    return ScheduleRecord(
        id=row.id,
        cron=row.cron,
        timezone=row.timezone,
        enabled=bool(row.enabled),
        date_window=row.date_window,
        next_due_at=row.next_due_at,
        last_fired_at=row.last_fired_at,
        window_end=row.window_end,
        gaps=list(row.gaps or []),
    )


def load_schedules(conn: Connection, cfg_ids: list[str]) -> dict[str, list[ScheduleRecord]]:
    """Each configuration's schedules, in their order."""
    out: dict[str, list[ScheduleRecord]] = defaultdict(list)
    if cfg_ids:
        for row in conn.execute(
            sa.select(S).where(S.c.configuration_id.in_(cfg_ids)).order_by(S.c.position)
        ):
            out[row.configuration_id].append(_schedule(row))
    return out


def replace_schedules(
    conn: Connection,
    workspace_id: str,
    cfg_id: str,
    wanted: list[ScheduleRecord],
    now: datetime,
) -> None:
    """Make the configuration's schedules ``wanted``: matched by id, an existing one keeps its
    state (last firing, window end, gaps); others are inserted; the rest deleted."""
    keep = [s.id for s in wanted]
    conn.execute(S.delete().where(S.c.configuration_id == cfg_id, S.c.id.not_in(keep)))
    existing = set(conn.execute(sa.select(S.c.id).where(S.c.configuration_id == cfg_id)).scalars())
    for position, s in enumerate(wanted):
        values = {
            "position": position,
            "cron": s.cron,
            "timezone": s.timezone,
            "enabled": s.enabled,
            "date_window": s.date_window,
            "next_due_at": s.next_due_at,
        }
        if s.id in existing:
            conn.execute(S.update().where(S.c.id == s.id).values(**values))
        else:
            conn.execute(
                S.insert().values(
                    id=s.id,
                    workspace_id=workspace_id,
                    configuration_id=cfg_id,
                    created_at=now,
                    **values,
                )
            )


_ADVANCE = (
    S.update()
    .where(S.c.id == sa.bindparam("schedule_id"))
    .values(
        next_due_at=sa.bindparam("to_next_due_at"),
        last_due_at=sa.bindparam("to_last_due_at"),
        last_fired_at=sa.bindparam("to_last_fired_at"),
        window_end=sa.bindparam("to_window_end"),
        gaps=sa.bindparam("to_gaps", type_=S.c.gaps.type),
    )
)


def advance_schedules(conn: Connection, slots: list[Slot], now: datetime) -> set[Slot]:
    """Move each slot's schedule past it if it is still where the scheduler read it; the
    slots whose schedules moved (one another scheduler moved first is left out). The rows
    are locked as they are read (in id order, whoever reads them), so no other scheduler
    moves one before this transaction ends. Backfill slots have no schedule row: their
    unique key is their guard."""
    ours = {s for s in slots if s.schedule_id == BACKFILL}
    fired = [s for s in slots if s.schedule_id != BACKFILL]
    if not fired:
        return ours
    current = {
        r.id: r
        for r in conn.execute(
            sa.select(S.c.id, S.c.next_due_at, S.c.window_end, S.c.gaps)
            .where(S.c.id.in_([s.schedule_id for s in fired]))
            .order_by(S.c.id)
            .with_for_update()
        )
    }
    rows: list[dict[str, Any]] = []
    for s in fired:
        row = current.get(s.schedule_id)
        if row is None or row.next_due_at != s.expected_due:
            continue
        gaps = row.gaps
        if s.gap is not None:
            gaps = [*(gaps or []), {"from": s.gap[0].isoformat(), "to": s.gap[1].isoformat()}]
        rows.append(
            {
                "schedule_id": s.schedule_id,
                "to_next_due_at": s.next_due_at,
                "to_last_due_at": s.due_at,
                "to_last_fired_at": now,
                "to_window_end": row.window_end if s.window_end is None else s.window_end,
                "to_gaps": gaps,
            }
        )
        ours.add(s)
    if rows:
        conn.execute(_ADVANCE, rows)
    return ours


# A round's two queries, built once: a scheduler runs one round every 0.5 s, mostly finding
# nothing, and building the statements was most of such a round's CPU (bench/scheduler.py).
_NOW = sa.bindparam("now", type_=S.c.next_due_at.type)
_WITHIN_END = sa.or_(configs.c.end_date.is_(None), configs.c.end_date > _NOW)
_FIRING = (
    configs.c.status == ConfigStatus.SUBMITTED.value,
    configs.c.paused.is_(False),
)
_DUE = (
    sa.select(S, configs.c.start_date)
    .join(configs, configs.c.id == S.c.configuration_id)
    .where(S.c.enabled.is_(True), S.c.next_due_at <= _NOW, *_FIRING, _WITHIN_END)
    .order_by(S.c.next_due_at)
    .limit(sa.bindparam("limit", type_=sa.Integer()))
)
_BACKFILLS = sa.select(
    configs.c.id,
    configs.c.workspace_id,
    configs.c.sync_historical_data,
    configs.c.backfill_window,
).where(
    configs.c.sync_historical_data.is_not(None),
    *_FIRING,
    sa.or_(configs.c.start_date.is_(None), configs.c.start_date <= _NOW),
    _WITHIN_END,
)


def _due(conn: Connection, now: datetime, limit: int) -> list[DueSchedule]:
    """Enabled schedules whose slot has come, of submitted, unpaused configurations within
    their end date (a slot before the start date is skipped by the scheduler)."""
    return [
        DueSchedule(_schedule(r), r.workspace_id, r.configuration_id, r.start_date)
        for r in conn.execute(_DUE, {"now": now, "limit": limit}).all()
    ]


def _backfills(conn: Connection, now: datetime) -> list[Backfill]:
    """Configurations whose backfill may enqueue its next window now, with where it stands
    (busy: a window's run is still queued or running). Its end is today (UTC), so each day
    that passes adds the window that covers it."""
    return [
        Backfill(
            r.workspace_id,
            r.id,
            backfill_state(conn, r.id, r.sync_historical_data, now.date(), r.backfill_window),
        )
        for r in conn.execute(_BACKFILLS, {"now": now}).all()
    ]


class ScheduleRepo(Repository):
    def __init__(
        self, engine: Engine, clock: Clock = utcnow, max_runs_per_workspace: int | None = None
    ) -> None:
        super().__init__(engine, clock)
        # Runs of a workspace active at once: what a cancelled queued run hands its slot on to.
        self._max_runs = max_runs_per_workspace

    def pending(self, now: datetime, limit: int) -> tuple[list[DueSchedule], list[Backfill]]:
        """What a scheduler round has to look at, read on one connection (a round that finds
        nothing costs two queries)."""
        with self._reads.connect() as conn:
            return _due(conn, now, limit), _backfills(conn, now)

    def next_due(self, schedule_ids: list[str]) -> dict[str, datetime | None]:
        """Each schedule's next slot now: one another scheduler fired since it was read has
        moved on."""
        if not schedule_ids:
            return {}
        with self._reads.connect() as conn:
            rows = conn.execute(
                sa.select(S.c.id, S.c.next_due_at).where(S.c.id.in_(schedule_ids))
            ).all()
        return {r.id: r.next_due_at for r in rows}

    def skip(self, slot: Slot) -> bool:
        """Advance past a slot without firing it (before the start date, or a trigger that
        cannot be made); the same guard as a firing."""
        with self._engine.begin() as conn:
            changed = conn.execute(
                S.update()
                .where(S.c.id == slot.schedule_id, S.c.next_due_at == slot.expected_due)
                .values(next_due_at=slot.next_due_at, last_due_at=slot.due_at)
            ).rowcount
        return bool(changed)

    def cancel_queued(
        self, workspace_id: str, cfg_id: str, now: datetime, *, backfill_only: bool
    ) -> int:
        """Cancel the configuration's queued (PENDING/ON_HOLD) runs of scheduled and backfill
        executions (only backfill ones with ``backfill_only``); how many were cancelled.

        A backfill window cancelled this way gives up its slot key, so the backfill enqueues
        it again when it resumes; with ``backfill_only`` (the backfill was cleared) every
        backfill execution does, so a backfill set again later starts afresh. A scheduled
        window cancelled this way is listed in its schedule's ``gaps``: the next window starts
        after it (before 2026-12-04 its records were left out without a trace)."""
        slotted: sa.ColumnElement[bool] = executions.c.schedule_id.is_not(None)
        if backfill_only:
            slotted = executions.c.schedule_id == BACKFILL
        cancelled: list[str] = []  # their executions
        with self._engine.begin() as conn:
            queued = conn.execute(
                sa.select(
                    runs.c.id,
                    runs.c.status,
                    runs.c.execution_id,
                    executions.c.schedule_id,
                    executions.c.parameters,
                )
                .join(executions, executions.c.id == runs.c.execution_id)
                .where(
                    executions.c.workspace_id == workspace_id,
                    executions.c.configuration_id == cfg_id,
                    slotted,
                    runs.c.status.in_([RunStatus.PENDING.value, RunStatus.ON_HOLD.value]),
                )
                .order_by(runs.c.queued_at.desc())  # held ones first: none is released
            ).all()
            freed = False
            for run in queued:
                before = RunStatus(run.status)
                done = {"completed_at": now}
                if transition(conn, run.id, before, RunStatus.CANCELLED, now, done):
                    cancelled.append(run.execution_id)
                    freed = freed or before is RunStatus.PENDING
                    if run.schedule_id != BACKFILL:
                        _note_gap(conn, run.schedule_id, run.parameters)
            if freed:  # the active slot is free: a manual trigger held behind them goes next
                release_next(conn, workspace_id, now, self._max_runs)
            released: sa.ColumnElement[bool] = executions.c.id.in_(cancelled)
            if backfill_only:
                released = executions.c.configuration_id == cfg_id
            conn.execute(
                executions.update()
                .where(released, executions.c.schedule_id == BACKFILL)
                .values(schedule_id=None)
            )
        return len(cancelled)


def _note_gap(conn: Connection, schedule_id: str, parameters: dict[str, Any] | None) -> None:
    """List a cancelled scheduled run's window in its schedule's ``gaps``."""
    options = (parameters or {}).get("options") or {}
    start, end = options.get("dateFrom"), options.get("dateTo")
    if start is None or end is None:
        return  # a schedule without a dateWindow: no window to owe
    gaps = conn.execute(sa.select(S.c.gaps).where(S.c.id == schedule_id)).scalar_one_or_none()
    conn.execute(
        S.update()
        .where(S.c.id == schedule_id)
        .values(gaps=[*(gaps or []), {"from": _utc_text(start), "to": _utc_text(end)}])
    )


def _utc_text(when: str) -> str:
    """A window bound as ``gaps`` shows them: an instant in UTC, or a date as it is."""
    if "T" not in when:
        return when
    return datetime.fromisoformat(when).astimezone(UTC).isoformat()


@dataclass(frozen=True)
class Backfill:
    workspace_id: str
    configuration_id: str
    state: BackfillState
