"""The scheduler: fires due schedules and enqueues backfill windows, one round at a time.

A round reads what is due and fires its slots through ``ExecutionService.fire`` — what a
manual trigger does (frozen spec, on-hold queueing, one active run, audit), a workspace's slots
in one transaction — each slot inserted under its unique key in the transaction that advances
its schedule. Any number of schedulers may run rounds at once: a slot another one fired first
is simply not reported.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from egress.db.schedules import Backfill, DueSchedule, ScheduleRepo
from egress.domain.clock import Clock
from egress.domain.errors import Conflict, EgressError
from egress.domain.schedules import BACKFILL, Slot, local_iso, plan_firing
from egress.services.executions import ExecutionService, SlotTrigger

log = logging.getLogger(__name__)

# Schedules fired per round at most: a round stays short; the next one takes the rest.
ROUND_LIMIT = 1000


@dataclass(frozen=True)
class Fired:
    """One execution a round created."""

    configuration_id: str
    execution_id: str
    trigger: str  # schedule | backfill
    schedule_id: str | None
    due_at: datetime
    catch_up: bool


class SchedulerService:
    def __init__(
        self,
        schedules: ScheduleRepo,
        executions: ExecutionService,
        clock: Clock,
        max_lateness_s: float,
    ) -> None:
        self._schedules = schedules
        self._executions = executions
        self._clock = clock
        self._max_lateness = timedelta(seconds=max_lateness_s)

    def run_once(self) -> list[Fired]:
        """One round: every due schedule fires its latest slot, every idle backfill enqueues
        its next window. Returns what this round (not another scheduler) created."""
        now = self._clock()
        due, backfills = self._schedules.pending(now, ROUND_LIMIT)
        # Slots another scheduler fired since: one query spares planning them.
        current = self._schedules.next_due([d.schedule.id for d in due])
        slots = [
            t
            for d in due
            if current.get(d.schedule.id) == d.schedule.next_due_at
            and (t := self._plan(d, now)) is not None
        ]
        slots += [t for b in backfills if (t := self._backfill(b)) is not None]
        fired: list[Fired] = []
        for t, outcome in zip(slots, self._executions.fire(slots), strict=True):
            if isinstance(outcome, str):
                schedule_id = None if t.kind == "backfill" else t.slot.schedule_id
                fired.append(
                    Fired(t.cfg_id, outcome, t.kind, schedule_id, t.slot.due_at, t.slot.catch_up)
                )
            elif outcome is not None:
                self._not_fired(t, outcome)
        return fired

    def _plan(self, due: DueSchedule, now: datetime) -> SlotTrigger | None:
        s = due.schedule
        assert s.next_due_at is not None  # due() reads only schedules with a next slot
        zone = _zone(s.timezone)
        firing = plan_firing(
            s.cron, zone, s.next_due_at, now, s.date_window, s.window_end, self._max_lateness
        )
        slot = Slot(
            schedule_id=s.id,
            due_at=firing.due_at,
            window_end=firing.window[1] if firing.window else None,
            catch_up=firing.catch_up,
            expected_due=s.next_due_at,
            next_due_at=firing.next_due_at,
            gap=firing.gap,
        )
        if due.start_date is not None and firing.due_at < due.start_date:
            self._schedules.skip(slot)  # only a configuration within its dates fires
            return None
        options = {} if firing.window is None else _window(*firing.window, zone)
        return SlotTrigger(due.workspace_id, due.configuration_id, options, "schedule", slot)

    def _backfill(self, b: Backfill) -> SlotTrigger | None:
        if b.state.busy or not b.state.remaining:
            return None  # the next window waits for the previous one to end
        lo, hi = b.state.remaining[0]
        start = datetime.combine(lo, time(0), tzinfo=UTC)
        end = datetime.combine(hi, time(0), tzinfo=UTC)
        slot = Slot(schedule_id=BACKFILL, due_at=start, window_end=end)
        # A backfill never uses or moves the watermark.
        options = {**_window(start, end, UTC), "extractOnlyNew": False}
        return SlotTrigger(b.workspace_id, b.configuration_id, options, "backfill", slot)

    def _not_fired(self, t: SlotTrigger, exc: EgressError) -> None:
        """A slot its configuration cannot take. A schedule skips it (its template changed or
        is gone) rather than retry it every round — its next window still starts where the
        last one that ran ended —, but tries again after a conflict (a race with a concurrent
        change); a backfill tries its window again next round."""
        log.warning("%s slot %s of %s not fired: %s", t.kind, t.slot.due_at, t.cfg_id, exc)
        if t.kind == "schedule" and not isinstance(exc, Conflict):
            self._schedules.skip(t.slot)


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _window(start: datetime, end: datetime, zone: tzinfo) -> dict[str, object]:
    """A half-open date window as trigger options, shown in ``zone``."""
    return {
        "dateFrom": local_iso(start, zone),
        "dateTo": local_iso(end, zone),
        "dateToExclusive": True,
    }
