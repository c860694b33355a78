"""The scheduler: fires due schedules and enqueues backfill windows, one round at a time.

A round reads what is due and fires each slot through ``ExecutionService.trigger`` — the path
a manual trigger takes (frozen spec, on-hold queueing, one active run) — with the slot, which
the repository inserts under its unique key in the transaction that advances the schedule.
Any number of schedulers may run rounds at once: a slot another one fired is ``SlotTaken``.
"""

from __future__ import annotations

import logging
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from egress.db.schedules import Backfill, DueSchedule, ScheduleRepo
from egress.domain.clock import Clock
from egress.domain.errors import Conflict, EgressError
from egress.domain.schedules import BACKFILL, Slot, SlotTaken, local_iso, plan_firing
from egress.services.executions import ExecutionService

log = logging.getLogger(__name__)

# Schedules fired per round at most: a round stays short; the next one takes the rest.
ROUND_LIMIT = 1000
# Slots fired at once within a round: a firing is a dozen short queries, mostly waiting on
# the database, so 200 slots due in the same minute fire within a second instead of one
# after the other (bench/scheduler.py). On SQLite the writes serialise anyway.
FIRING_THREADS = 8


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
        # Concurrent schedulers read the same due list: in their own random orders they mostly
        # fire different slots instead of all queueing on the same schedule row's lock.
        random.shuffle(due)
        if len(due) > 1:
            with ThreadPoolExecutor(min(FIRING_THREADS, len(due)), "scheduler-fire") as pool:
                outcomes = list(pool.map(lambda d: self._fire(d, now), due))
        else:
            outcomes = [self._fire(d, now) for d in due]
        fired = [f for f in outcomes if f is not None]
        fired += [f for b in backfills if (f := self._backfill(b))]
        return fired

    def _fire(self, due: DueSchedule, now: datetime) -> Fired | None:
        s = due.schedule
        assert s.next_due_at is not None  # due() reads only schedules with a next slot
        if not self._schedules.still_due(s.id, s.next_due_at):
            return None  # fired by another scheduler since this round read it
        zone = ZoneInfo(s.timezone)
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
        created = self._trigger(due.workspace_id, due.configuration_id, options, "schedule", slot)
        if created is None:
            return None
        return Fired(due.configuration_id, created, "schedule", s.id, slot.due_at, slot.catch_up)

    def _backfill(self, b: Backfill) -> Fired | None:
        if b.state.busy or not b.state.remaining:
            return None  # the next window waits for the previous one to end
        lo, hi = b.state.remaining[0]
        start = datetime.combine(lo, time(0), tzinfo=UTC)
        end = datetime.combine(hi, time(0), tzinfo=UTC)
        slot = Slot(schedule_id=BACKFILL, due_at=start, window_end=end)
        # A backfill never uses or moves the watermark.
        options = {**_window(start, end, UTC), "extractOnlyNew": False}
        created = self._trigger(b.workspace_id, b.configuration_id, options, "backfill", slot)
        if created is None:
            return None
        return Fired(b.configuration_id, created, "backfill", None, start, False)

    def _trigger(
        self, workspace_id: str, cfg_id: str, options: dict[str, object], kind: str, slot: Slot
    ) -> str | None:
        """Fire ``slot`` the way a manual trigger runs; the new execution's id, or None when
        another scheduler fired it first or the configuration cannot run now. A schedule
        skips a slot its configuration cannot take (its template changed or is gone) rather
        than retry it every round — its next window still starts where the last one that ran
        ended —, but tries again after a conflict (a race with a concurrent change); a
        backfill tries its window again next round."""
        try:
            execution, _ = self._executions.trigger(workspace_id, cfg_id, options, kind, slot=slot)
        except SlotTaken:
            return None
        except EgressError as exc:
            log.warning("%s slot %s of %s not fired: %s", kind, slot.due_at, cfg_id, exc)
            if kind == "schedule" and not isinstance(exc, Conflict):
                self._schedules.skip(slot)
            return None
        return execution.id


def _window(start: datetime, end: datetime, zone: tzinfo) -> dict[str, object]:
    """A half-open date window as trigger options, shown in ``zone``."""
    return {
        "dateFrom": local_iso(start, zone),
        "dateTo": local_iso(end, zone),
        "dateToExclusive": True,
    }
