"""Schedules: cron in the user's time zone, DST rules, half-open date windows and catch-up.

Pure rules (no I/O): croniter walks *wall-clock* times (naive datetimes, where it is exact),
and this module maps each wall time to an instant with ``zoneinfo``, which is where the DST
rules live:

- a wall time in a spring-forward gap (02:30 that never happens) fires once, at the first
  valid instant after it (the transition itself); several slots in one gap collapse into it;
- a wall time in a fall-back overlap (01:30 that happens twice) fires once, at its first
  occurrence (``fold=0``).

The wall → instant mapping is non-decreasing, so "the first slot after t" and "the last slot at
or before t" are found by walking wall times from ``t``'s own wall time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from egress.domain.errors import Invalid

# The macros a schedule may use besides five cron fields (seconds or years are not offered).
MACROS = ("@hourly", "@daily", "@weekly", "@monthly")
DATE_WINDOWS = ("previousHour", "previousDay", "previousWeek", "previousMonth")
BACKFILL_WINDOWS = ("day", "week", "month")
DEFAULT_SCHEDULES_LIMIT = 5
DEFAULT_MAX_LATENESS_S = 86_400.0
# A runaway walk (a cron that matches nothing for years, e.g. 30 February) stops here.
_MAX_STEPS = 10_000


Loc = tuple[str | int, ...]


def check_cron(expr: str, loc: Loc) -> str:
    """Five fields or one of ``MACROS``; 422 naming the schedule otherwise."""
    text = " ".join(expr.split())
    if text.startswith("@"):
        if text not in MACROS:
            raise Invalid.at(loc, f"unknown macro {text!r}; use one of {', '.join(MACROS)}")
        return text
    if len(text.split(" ")) != 5:
        raise Invalid.at(
            loc,
            f"{expr!r} must have 5 fields (minute hour day-of-month month day-of-week)",
        )
    if not croniter.is_valid(text):
        raise Invalid.at(loc, f"{expr!r} is not a valid cron expression")
    try:  # is_valid accepts some expressions that never match (e.g. 30 February)
        next_fire(text, ZoneInfo("UTC"), datetime(2000, 1, 1, tzinfo=UTC))
    except ValueError as exc:
        raise Invalid.at(loc, f"{expr!r} never fires: {exc}") from exc
    return text


def check_timezone(name: str, loc: Loc) -> ZoneInfo:
    """An IANA name known to ``zoneinfo``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Invalid.at(loc, f"unknown time zone {name!r}; use an IANA name") from exc


def _wall(t: datetime, zone: ZoneInfo) -> datetime:
    """``t``'s local wall time, naive (through UTC: ``astimezone`` to a datetime's own zone
    returns it unchanged, even a wall time that does not exist)."""
    return t.astimezone(UTC).astimezone(zone).replace(tzinfo=None)


def _offset(wall: datetime, zone: ZoneInfo, fold: int) -> timedelta:
    off = wall.replace(tzinfo=zone, fold=fold).utcoffset()
    assert off is not None
    return off


def instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """When wall time ``wall`` fires in ``zone`` (UTC): its first occurrence, or for a time in
    a gap the first valid instant after it."""
    first = wall.replace(tzinfo=zone, fold=0)
    if _wall(first, zone) == wall:
        return first.astimezone(UTC)  # exists (an overlap's fold=0 is its first occurrence)
    # In a gap: fold=0 reads it with the offset before the jump (an instant after the jump),
    # fold=1 with the offset after it (an instant before it); the jump lies between.
    lo = (wall - _offset(wall, zone, 1)).replace(tzinfo=UTC)
    hi = (wall - _offset(wall, zone, 0)).replace(tzinfo=UTC)
    if hi < lo:
        lo, hi = hi, lo
    before = lo.astimezone(zone).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi.replace(microsecond=0)


# Cached: the schedules due in one round mostly share a cron and zone, and croniter's walk is
# most of planning a firing (200 "* * * * *" slots of one minute: one walk, not 200).
@functools.lru_cache(maxsize=4096)
def next_fire(expr: str, zone: ZoneInfo, after: datetime) -> datetime:
    """The first fire instant strictly after ``after`` (UTC)."""
    it = croniter(expr, _wall(after, zone))
    for _ in range(_MAX_STEPS):
        at = instant(it.get_next(datetime), zone)
        if at > after:
            return at
    raise ValueError(f"no fire time found within {_MAX_STEPS} steps")


@functools.lru_cache(maxsize=4096)
def previous_fire(expr: str, zone: ZoneInfo, at_or_before: datetime) -> datetime:
    """The last fire instant at or before ``at_or_before`` (UTC)."""
    wall = _wall(at_or_before, zone)
    # In an overlap's second pass, later wall times of the first pass are already behind us:
    # start from the wall time that the first pass shows at this instant.
    shift = _offset(wall, zone, 0) - at_or_before.astimezone(zone).utcoffset()  # type: ignore[operator]
    it = croniter(expr, wall + max(shift, timedelta(0)) + timedelta(seconds=1))
    for _ in range(_MAX_STEPS):
        at = instant(it.get_prev(datetime), zone)
        if at <= at_or_before:
            return at
    raise ValueError(f"no fire time found within {_MAX_STEPS} steps")


def upcoming(expr: str, zone: ZoneInfo, after: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    at = after
    for _ in range(count):
        at = next_fire(expr, zone, at)
        out.append(at)
    return out


def local_iso(t: datetime, zone: tzinfo) -> str:
    """ISO 8601 with the zone's offset at ``t``."""
    return t.astimezone(zone).isoformat()


def window_in_days(options: dict[str, Any]) -> dict[str, Any]:
    """A schedule's window (``dateFrom``/``dateTo`` with the zone's offset, half-open) for a
    dateField holding dates: a date belongs to the window holding its midnight in the
    schedule's zone, so each bound becomes the first date whose midnight is at or after it.
    Compared with each date's UTC midnight, New York's 02:00 ``previousDay`` window took the
    rows dated the day after (before 2026-12-04)."""
    out = dict(options)
    for key in ("dateFrom", "dateTo"):
        text = options.get(key)
        if isinstance(text, str) and "T" in text:
            t = datetime.fromisoformat(text)
            day = t.date() if t.time() == time(0) else t.date() + timedelta(days=1)
            out[key] = day.isoformat()
    return out


def utc_iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------------ date windows
def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return instant(datetime(day.year, day.month, day.day), zone)


def natural_window(kind: str, due: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The half-open window ``[start, end)`` (UTC instants) that ``kind`` names for a slot due
    at ``due``, in the schedule's zone: previousDay of 02:00 on 29 March 2026 in London is
    [28 March 00:00, 29 March 00:00) London time, 23 hours long."""
    wall = _wall(due, zone)
    if kind == "previousHour":
        end_wall = wall.replace(minute=0, second=0, microsecond=0)
        return instant(end_wall - timedelta(hours=1), zone), instant(end_wall, zone)
    today = wall.date()
    if kind == "previousDay":
        return _local_midnight(today - timedelta(days=1), zone), _local_midnight(today, zone)
    if kind == "previousWeek":  # ISO weeks: Monday to Monday
        monday = today - timedelta(days=today.weekday())
        return _local_midnight(monday - timedelta(days=7), zone), _local_midnight(monday, zone)
    if kind == "previousMonth":
        first = today.replace(day=1)
        previous = (first - timedelta(days=1)).replace(day=1)
        return _local_midnight(previous, zone), _local_midnight(first, zone)
    raise ValueError(f"unknown dateWindow {kind!r}")


# The schedule id a backfill window's execution carries in its slot key.
BACKFILL = "backfill"


class SlotTaken(Exception):
    """Another scheduler fired this slot (or advanced the schedule past it) first."""


@dataclass(frozen=True)
class Slot:
    """What a scheduled or backfill execution fires for; its key ``(schedule_id, due_at)`` is
    unique per configuration. A schedule's slot also advances the schedule in the same
    transaction, guarded by the ``next_due_at`` the scheduler read (``expected_due``)."""

    schedule_id: str
    due_at: datetime
    window_end: datetime | None = None
    catch_up: bool = False
    expected_due: datetime | None = None
    next_due_at: datetime | None = None
    gap: tuple[datetime, datetime] | None = None


@dataclass(frozen=True)
class Firing:
    """What one scheduler round decides for one schedule that is due."""

    due_at: datetime  # the slot fired: the most recent one at or before now
    catch_up: bool  # slots before it were missed (downtime): they are not replayed
    next_due_at: datetime
    window: tuple[datetime, datetime] | None  # half-open [from, to), UTC instants
    gap: tuple[datetime, datetime] | None  # what max lateness left uncovered


def plan_firing(
    expr: str,
    zone: ZoneInfo,
    stored_due: datetime,
    now: datetime,
    date_window: str | None,
    previous_end: datetime | None,
    max_lateness: timedelta,
) -> Firing:
    """The firing of a schedule whose stored next slot ``stored_due`` is ``<= now``.

    One execution fires for the latest slot at or before now; each window starts where the
    previous one ended, so downtime or a clock change widens it instead of leaving a gap or
    an overlap — except that a window never starts more than ``max_lateness`` before its slot
    (unless its natural span already does): what that leaves out is the gap."""
    due = max(previous_fire(expr, zone, now), stored_due)
    window = gap = None
    if date_window is not None:
        natural_start, end = natural_window(date_window, due, zone)
        start = natural_start if previous_end is None else previous_end
        floor = min(natural_start, due - max_lateness)
        if start < floor:
            gap = (start, floor)
            start = floor
        # A slot whose natural window ends before the previous one did (its schedule moved
        # to a zone further east, or to a shorter dateWindow) has an empty window there: the
        # stored end never moves back (it did before 2026-12-04, and the next window took
        # records the previous ones had delivered).
        window = (start, max(start, end))
    return Firing(due, due != stored_due, next_fire(expr, zone, due), window, gap)


# --------------------------------------------------------------------------- backfill
def _next_boundary(day: date, kind: str) -> date:
    if kind == "day":
        return day + timedelta(days=1)
    if kind == "week":  # ISO weeks: the next Monday
        return day + timedelta(days=7 - day.weekday())
    if kind == "month":
        return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    raise ValueError(f"unknown backfillWindow {kind!r}")


def split_range(start: date, end: date, kind: str) -> list[tuple[date, date]]:
    """``[start, end)`` as half-open calendar windows of ``kind`` (the first and last may be
    partial), oldest first."""
    out: list[tuple[date, date]] = []
    day = start
    while day < end:
        nxt = min(_next_boundary(day, kind), end)
        out.append((day, nxt))
        day = nxt
    return out


def uncovered(start: date, end: date, covered: list[tuple[date, date]]) -> list[tuple[date, date]]:
    """The parts of ``[start, end)`` that no window in ``covered`` holds, oldest first."""
    parts: list[tuple[date, date]] = []
    cursor = start
    for lo, hi in sorted(covered):
        if hi <= cursor:
            continue
        if lo > cursor:
            parts.append((cursor, min(lo, end)))
        cursor = max(cursor, hi)
        if cursor >= end:
            break
    if cursor < end:
        parts.append((cursor, end))
    return [(lo, hi) for lo, hi in parts if lo < hi]


def backfill_plan(
    start: date, end: date, kind: str, covered: list[tuple[date, date]]
) -> list[tuple[date, date]]:
    """The windows still to run: the uncovered parts of ``[start, end)``, each split into
    calendar windows. Moving the start earlier adds only windows before what is covered."""
    return [w for lo, hi in uncovered(start, end, covered) for w in split_range(lo, hi, kind)]


def parse_day(text: str, loc: Loc) -> date:
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError as exc:
        raise Invalid.at(loc, f"{text!r} is not an ISO date (2025-02-25)") from exc


# ------------------------------------------------------------------------ sync status
def sync_status(*, active: bool, paused: bool, running: bool, last_finished_failed: bool) -> str:
    """Seed 001's status: the first of inactive, paused, syncing, error, active that holds."""
    if not active:
        return "inactive"
    if paused:
        return "paused"
    if running:
        return "syncing"
    if last_finished_failed:
        return "error"
    return "active"
