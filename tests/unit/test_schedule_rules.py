"""The pure schedule rules: cron validation, fire times across both DST changes of 2026 in three
zones, half-open date windows, catch-up, backfill windows and the syncStatus precedence."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from egress.domain.errors import Invalid
from egress.domain.schedules import (
    backfill_plan,
    check_cron,
    check_timezone,
    local_iso,
    natural_window,
    next_fire,
    plan_firing,
    previous_fire,
    split_range,
    sync_status,
    upcoming,
    utc_iso,
    window_in_days,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")
DAY = timedelta(days=1)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    "expr",
    ["0 2 * * *", "*/15 9-17 * * 1-5", "@hourly", "@daily", "@weekly", "@monthly", " 0  2 * * * "],
)
def test_valid_cron_expressions(expr: str) -> None:
    assert check_cron(expr, ("body", "schedules", 0, "cron")) == " ".join(expr.split())


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("0 2 * * * *", "must have 5 fields"),
        ("0 2 * *", "must have 5 fields"),
        ("61 * * * *", "not a valid cron expression"),
        ("@yearly", "unknown macro"),
        ("0 0 30 2 *", "never fires"),
    ],
)
def test_invalid_cron_names_the_schedule_and_the_reason(expr: str, reason: str) -> None:
    with pytest.raises(Invalid) as exc:
        check_cron(expr, ("body", "schedules", 1, "cron"))
    error = exc.value.errors[0]
    assert error.loc == ("body", "schedules", 1, "cron")
    assert reason in error.msg


@pytest.mark.parametrize("name", ["Mars/Olympus", "../etc/passwd", "", "Europe/"])
def test_unknown_time_zone_is_refused(name: str) -> None:
    with pytest.raises(Invalid, match="unknown time zone"):
        check_timezone(name, ("body", "schedules", 0, "timezone"))


# (zone, cron, after, expected fire times in UTC)
DST_CASES = [
    # London, spring forward 29 March 01:00 GMT -> 02:00 BST: 01:30 does not exist, fires once
    # at the first valid instant after it (01:00 UTC = 02:00 BST).
    (LONDON, "30 1 * * *", utc(2026, 3, 28, 2), [utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)]),
    # ... and four slots inside the gap (01:00-01:45) plus 02:00 itself collapse into one.
    (
        LONDON,
        "*/15 * * * *",
        utc(2026, 3, 29, 0, 40),
        [utc(2026, 3, 29, 0, 45), utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 15)],
    ),
    # London, fall back 25 October 02:00 BST -> 01:00 GMT: 01:30 happens twice, fires once
    # (the first occurrence, 00:30 UTC).
    (
        LONDON,
        "30 1 * * *",
        utc(2026, 10, 24, 12),
        [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
    ),
    # every half hour: the repeated hour's wall times have fired already in its first pass.
    (
        LONDON,
        "*/30 * * * *",
        utc(2026, 10, 24, 23, 45),
        [utc(2026, 10, 25, 0), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 2)],
    ),
    # New York, 8 March 02:00 EST -> 03:00 EDT: 02:30 fires at 03:00 EDT (07:00 UTC).
    (NEW_YORK, "30 2 * * *", utc(2026, 3, 7, 12), [utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 30)]),
    # New York, 1 November 02:00 EDT -> 01:00 EST: 01:30 fires at its EDT occurrence only.
    (
        NEW_YORK,
        "30 1 * * *",
        utc(2026, 10, 31, 12),
        [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],
    ),
    # Sydney, 5 April 03:00 AEDT -> 02:00 AEST: 02:30 fires at its AEDT occurrence (15:30 UTC).
    (
        SYDNEY,
        "30 2 * * *",
        utc(2026, 4, 3, 12),
        [utc(2026, 4, 3, 15, 30), utc(2026, 4, 4, 15, 30), utc(2026, 4, 5, 16, 30)],
    ),
    # Sydney, 4 October 02:00 AEST -> 03:00 AEDT: 02:30 fires at 03:00 AEDT (16:00 UTC).
    (
        SYDNEY,
        "30 2 * * *",
        utc(2026, 10, 2, 12),
        [utc(2026, 10, 2, 16, 30), utc(2026, 10, 3, 16), utc(2026, 10, 4, 15, 30)],
    ),
]


@pytest.mark.parametrize(("zone", "expr", "after", "expected"), DST_CASES)
def test_fire_times_across_both_dst_changes(
    zone: ZoneInfo, expr: str, after: datetime, expected: list[datetime]
) -> None:
    assert upcoming(expr, zone, after, len(expected)) == expected


@pytest.mark.parametrize(("zone", "expr", "after", "expected"), DST_CASES)
def test_previous_fire_is_the_inverse_of_next_fire(
    zone: ZoneInfo, expr: str, after: datetime, expected: list[datetime]
) -> None:
    """Just before, at and just after each fire time, the last slot at or before is right."""
    for earlier, later in itertools.pairwise(expected):
        assert previous_fire(expr, zone, earlier) == earlier
        assert previous_fire(expr, zone, later - timedelta(seconds=1)) == earlier
        assert next_fire(expr, zone, earlier) == later


def test_previous_fire_in_the_second_pass_of_a_repeated_hour() -> None:
    # 01:40 GMT on 25 October: the first pass's 01:30 BST (00:30 UTC) was the last slot.
    assert previous_fire("*/30 * * * *", LONDON, utc(2026, 10, 25, 1, 40)) == utc(
        2026, 10, 25, 0, 30
    )


# Two days before each DST change of 2026 in each zone.
AROUND_CHANGES = [
    (LONDON, utc(2026, 3, 27)),
    (LONDON, utc(2026, 10, 23)),
    (NEW_YORK, utc(2026, 3, 6)),
    (NEW_YORK, utc(2026, 10, 30)),
    (SYDNEY, utc(2026, 4, 3)),
    (SYDNEY, utc(2026, 10, 2)),
]


@pytest.mark.parametrize(("zone", "start"), AROUND_CHANGES)
def test_hourly_slots_across_a_change_never_repeat_or_go_back(
    zone: ZoneInfo, start: datetime
) -> None:
    times = upcoming("@hourly", zone, start, 24 * 4)
    assert all(a < b for a, b in itertools.pairwise(times))
    # each local hour fires once: none twice in a repeated hour, the lost one not at all
    assert len({local_iso(t, zone)[:13] for t in times}) == len(times)
    # UTC spacing is an hour, or two where a repeated hour is skipped
    assert times[-1] - times[0] in (timedelta(hours=95), timedelta(hours=96))


def test_iso_forms() -> None:
    t = utc(2026, 7, 1, 1)
    assert utc_iso(t) == "2026-07-01T01:00:00Z"
    assert local_iso(t, LONDON) == "2026-07-01T02:00:00+01:00"


def test_previous_day_is_half_open_in_the_schedules_zone() -> None:
    # The 02:00 slot of 29 March (London): [28 March 00:00, 29 March 00:00) London time.
    assert natural_window("previousDay", utc(2026, 3, 29, 1), LONDON) == (
        utc(2026, 3, 28, 0),
        utc(2026, 3, 29, 0),
    )
    # The next day's slot covers 29 March, the 23-hour day of the change.
    start, end = natural_window("previousDay", utc(2026, 3, 30, 1), LONDON)
    assert (start, end) == (utc(2026, 3, 29, 0), utc(2026, 3, 29, 23))
    assert end - start == timedelta(hours=23)
    # and 25 October, 25 hours long.
    start, end = natural_window("previousDay", utc(2026, 10, 26, 2), LONDON)
    assert end - start == timedelta(hours=25)


@pytest.mark.parametrize(
    ("kind", "due", "expected"),
    [
        ("previousHour", utc(2026, 5, 4, 10, 5), (utc(2026, 5, 4, 9), utc(2026, 5, 4, 10))),
        ("previousWeek", utc(2026, 5, 6, 1), (utc(2026, 4, 26, 23), utc(2026, 5, 3, 23))),
        ("previousMonth", utc(2026, 4, 1, 1), (utc(2026, 3, 1, 0), utc(2026, 3, 31, 23))),
    ],
)
def test_other_windows_in_the_zone(
    kind: str, due: datetime, expected: tuple[datetime, datetime]
) -> None:
    # London local time: 11:05 BST's previous hour is 10:00-11:00 BST; the Wednesday 6 May
    # slot's previous ISO week starts Monday 27 April 00:00 BST; 1 April 02:00 BST's previous
    # month runs from 1 March 00:00 GMT to 1 April 00:00 BST.
    assert natural_window(kind, due, LONDON) == expected


def test_consecutive_windows_touch_with_no_gap_or_overlap() -> None:
    """Each firing's window starts where the previous one ended, DST changes included."""
    expr, previous_end = "0 2 * * *", None
    due = next_fire(expr, LONDON, utc(2026, 3, 20))
    for _ in range(230):  # through both changes of 2026
        firing = plan_firing(expr, LONDON, due, due, "previousDay", previous_end, DAY)
        assert firing.window is not None and not firing.catch_up and firing.gap is None
        if previous_end is not None:
            assert firing.window[0] == previous_end
        previous_end, due = firing.window[1], firing.next_due_at


def test_downtime_fires_once_for_the_latest_slot_widening_the_window() -> None:
    expr = "0 2 * * *"
    stored = utc(2026, 6, 1, 1)  # 02:00 BST on 1 June; the scheduler was down until 4 June
    now = utc(2026, 6, 4, 9)
    firing = plan_firing(
        expr, LONDON, stored, now, "previousDay", utc(2026, 5, 30, 23), timedelta(days=10)
    )
    assert firing.due_at == utc(2026, 6, 4, 1) and firing.catch_up
    assert firing.window == (utc(2026, 5, 30, 23), utc(2026, 6, 3, 23))
    assert firing.gap is None
    assert firing.next_due_at == utc(2026, 6, 5, 1)


def test_max_lateness_bounds_how_far_back_a_catch_up_window_starts() -> None:
    firing = plan_firing(
        "0 2 * * *",
        LONDON,
        utc(2026, 6, 1, 1),
        utc(2026, 6, 4, 9),
        "previousDay",
        utc(2026, 5, 30, 23),
        DAY,
    )
    # the natural previousDay window is kept whole; what lies before it is the gap
    assert firing.window == (utc(2026, 6, 2, 23), utc(2026, 6, 3, 23))
    assert firing.gap == (utc(2026, 5, 30, 23), utc(2026, 6, 2, 23))


def test_a_slot_fired_on_time_is_not_a_catch_up() -> None:
    firing = plan_firing(
        "* * * * *", LONDON, utc(2026, 6, 1, 0, 5), utc(2026, 6, 1, 0, 5, 40), None, None, DAY
    )
    assert (firing.due_at, firing.catch_up, firing.window) == (utc(2026, 6, 1, 0, 5), False, None)
    assert firing.next_due_at == utc(2026, 6, 1, 0, 6)


def test_backfill_windows_cover_the_range_exactly() -> None:
    start, end = date(2025, 2, 25), date(2026, 12, 1)
    for kind in ("day", "week", "month"):
        windows = split_range(start, end, kind)
        assert windows[0][0] == start and windows[-1][1] == end
        assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))
    months = split_range(start, end, "month")
    assert months[:2] == [
        (date(2025, 2, 25), date(2025, 3, 1)),
        (date(2025, 3, 1), date(2025, 4, 1)),
    ]
    assert len(months) == 22
    weeks = split_range(date(2026, 1, 1), date(2026, 1, 20), "week")  # ISO weeks from Monday
    assert weeks == [
        (date(2026, 1, 1), date(2026, 1, 5)),
        (date(2026, 1, 5), date(2026, 1, 12)),
        (date(2026, 1, 12), date(2026, 1, 19)),
        (date(2026, 1, 19), date(2026, 1, 20)),
    ]


def test_moving_the_backfill_earlier_adds_only_uncovered_windows() -> None:
    end = date(2025, 6, 1)
    covered = split_range(date(2025, 2, 25), date(2025, 4, 1), "month")  # two done
    plan = backfill_plan(date(2025, 1, 10), end, "month", covered)
    assert plan == [
        (date(2025, 1, 10), date(2025, 2, 1)),
        (date(2025, 2, 1), date(2025, 2, 25)),
        (date(2025, 4, 1), date(2025, 5, 1)),
        (date(2025, 5, 1), date(2025, 6, 1)),
    ]
    assert backfill_plan(date(2025, 2, 25), date(2025, 4, 1), "day", covered) == []


@pytest.mark.parametrize(
    ("active", "paused", "running", "failed", "expected"),
    [
        (False, True, True, True, "inactive"),
        (True, True, True, True, "paused"),
        (True, False, True, True, "syncing"),
        (True, False, False, True, "error"),
        (True, False, False, False, "active"),
    ],
)
def test_sync_status_precedence(
    active: bool, paused: bool, running: bool, failed: bool, expected: str
) -> None:
    assert (
        sync_status(active=active, paused=paused, running=running, last_finished_failed=failed)
        == expected
    )


def test_a_schedule_moved_east_never_moves_its_window_back() -> None:
    """UTC 01:00 previousDay windows end at 00:00 UTC; moved to 23:00 Asia/Tokyo, the next
    slot's natural window ends 15:00 UTC the day before: its window is empty at the previous
    end, which stays, and the following one starts there. Before 2026-12-04 the stored end
    moved back to 15:00 UTC, and the next window re-took 15:00-24:00 UTC."""
    tokyo = ZoneInfo("Asia/Tokyo")
    previous_end = utc(2026, 6, 13)  # the UTC schedule's last window ended here
    due = next_fire("0 23 * * *", tokyo, utc(2026, 6, 13))  # 13 June 23:00 JST = 14:00 UTC
    first = plan_firing("0 23 * * *", tokyo, due, due, "previousDay", previous_end, DAY)
    assert first.window == (previous_end, previous_end)
    second = plan_firing(
        "0 23 * * *", tokyo, first.next_due_at, first.next_due_at, "previousDay", previous_end, DAY
    )
    assert second.window == (previous_end, utc(2026, 6, 13, 15))


@pytest.mark.parametrize(
    ("window", "days"),
    [
        (("2026-06-03T00:00:00-04:00", "2026-06-04T00:00:00-04:00"), ("2026-06-03", "2026-06-04")),
        # an hour holding midnight takes that day; any other hour none
        (("2026-06-03T00:00:00+02:00", "2026-06-03T01:00:00+02:00"), ("2026-06-03", "2026-06-04")),
        (("2026-06-03T10:00:00+02:00", "2026-06-03T11:00:00+02:00"), ("2026-06-04", "2026-06-04")),
    ],
)
def test_a_window_in_days_takes_the_dates_whose_midnight_it_holds(
    window: tuple[str, str], days: tuple[str, str]
) -> None:
    options = {"dateFrom": window[0], "dateTo": window[1], "dateToExclusive": True}
    converted = window_in_days(options)
    assert (converted["dateFrom"], converted["dateTo"]) == days
    assert converted["dateToExclusive"] is True
