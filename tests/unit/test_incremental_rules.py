"""The safety lag's rules: durations, the mark a run may advance to, the observations kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from egress.domain.errors import Invalid
from egress.domain.incremental import (
    MAX_OBSERVATIONS,
    TRX_START_MARGIN_S,
    Observation,
    ServerClock,
    beyond_mark_problem,
    cursor_value,
    endless_mark_problem,
    held_back_by,
    kept_observations,
    lagged_mark,
    later,
    numeric_cursor,
    parse_lag,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
LOC = ("body", "incremental_lag")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        (0, 0),
        (2.5, 2.5),
        ("90s", 90),
        ("90", 90),
        ("5m", 300),
        ("1h", 3600),
        ("250ms", 0.25),
        (" 2 s ", 2),
    ],
)
def test_lag_durations(value: object, seconds: float | None) -> None:
    lag = parse_lag(value, LOC)
    assert (None if lag is None else lag.total_seconds()) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "not a duration"),
        ("-5s", "not a duration"),
        (-1, "between 0 seconds and 1 day"),
        ("25h", "between 0 seconds and 1 day"),
        (True, "must be a duration"),
        ([1], "must be a"),
    ],
)
def test_bad_lags_name_the_field(value: object, message: str) -> None:
    with pytest.raises(Invalid, match=message) as err:
        parse_lag(value, LOC)
    assert err.value.errors[0].loc == LOC


def test_the_mark_is_the_newest_maximum_seen_at_least_the_lag_ago() -> None:
    lag = timedelta(seconds=30)
    seen = [Observation(T0, 10), Observation(T0 + timedelta(seconds=20), 12)]
    assert lagged_mark(seen, T0 + timedelta(seconds=29), lag) is None  # nothing old enough
    assert lagged_mark(seen, T0 + timedelta(seconds=30), lag) == 10
    assert lagged_mark(seen, T0 + timedelta(seconds=50), lag) == 12
    assert lagged_mark(seen, T0, timedelta(0)) == 10  # no lag: what was just seen


def test_kept_observations_drop_only_what_can_never_be_the_mark_again() -> None:
    lag = timedelta(seconds=30)
    seen = [Observation(T0 + timedelta(seconds=s), s) for s in (0, 10, 20, 40, 50)]
    now = T0 + timedelta(seconds=55)
    kept = kept_observations(seen, now, lag)
    assert [o.high for o in kept] == [20, 40, 50]
    assert lagged_mark(kept, now, lag) == lagged_mark(seen, now, lag)


def test_frequent_runs_under_a_long_lag_are_thinned_never_past_the_newest() -> None:
    lag = timedelta(hours=1)
    seen = [Observation(T0 + timedelta(seconds=s), s) for s in range(1000)]
    kept = kept_observations(seen, T0 + timedelta(seconds=1000), lag)
    assert len(kept) <= MAX_OBSERVATIONS
    assert kept[0].high == 0 and kept[-1].high == 999
    assert [o.high for o in kept] == sorted(o.high for o in kept)


def test_an_open_transaction_holds_the_mark_at_a_maximum_seen_before_it_started() -> None:
    """A transaction takes its ids after it starts, so they lie above any maximum read before
    that: the mark may go there (and no further) whatever the transaction's age."""
    lag = timedelta(seconds=1)
    seen = [Observation(T0 + timedelta(seconds=s), 10 + s, 1000.0 + s) for s in (0, 5, 10)]
    now = T0 + timedelta(seconds=60)  # all three are lag old
    assert lagged_mark(seen, now, lag) == 20  # nothing open (or PROCESS unseen): the lag alone
    # Started more than the margin after the 2nd read: the mark may go that far.
    assert lagged_mark(seen, now, lag, oldest_open=1005.0 + TRX_START_MARGIN_S + 0.5) == 15
    assert lagged_mark(seen, now, lag, oldest_open=1005.0 + TRX_START_MARGIN_S) == 10
    assert lagged_mark(seen, now, lag, oldest_open=1005.0) == 10
    assert lagged_mark(seen, now, lag, oldest_open=1000.0) is None  # open since before all
    # Both rules hold: a read taken before the transaction but not yet lag old is not usable.
    assert lagged_mark(seen, T0 + timedelta(seconds=10), timedelta(seconds=5), 1020.0) == 15
    # Seen without the server's clock: usable only while nothing is open.
    unclocked = [Observation(T0, 10)]
    assert lagged_mark(unclocked, now, lag) == 10
    assert lagged_mark(unclocked, now, lag, oldest_open=2000.0) is None


def test_kept_observations_keep_what_an_open_transaction_may_still_release() -> None:
    lag = timedelta(seconds=1)
    seen = [Observation(T0 + timedelta(seconds=s), s, 1000.0 + s) for s in (0, 10, 20, 40, 50)]
    now = T0 + timedelta(seconds=55)
    kept = kept_observations(seen, now, lag, oldest_open=1015.0)
    assert [o.high for o in kept] == [10, 20, 40, 50]  # 10 is the mark; 20-50 may follow
    assert lagged_mark(kept, now, lag, 1015.0) == lagged_mark(seen, now, lag, 1015.0) == 10
    assert lagged_mark(kept, now, lag, 1041.5) == 40  # an older transaction has ended
    # Once the transaction has ended, the newest lag-old maximum is the mark again.
    assert lagged_mark(kept, now + lag, lag) == 50


def test_a_run_says_which_open_transaction_held_its_mark_back() -> None:
    lag = timedelta(seconds=1)
    seen = [Observation(T0 + timedelta(seconds=s), 10 + s, 1000.0 + s) for s in (0, 5, 10)]
    now = T0 + timedelta(seconds=60)
    open_since_1005 = ServerClock(now=1060.0, oldest_open=1005.0)
    warning = held_back_by(seen, now, lag, open_since_1005, watermark=None)
    assert warning == (
        "a transaction open on the source server since 1970-01-01 00:16:45 UTC (55 s) holds"
        " this run's window back: records seen after it started are taken once it ends"
        " (find it in information_schema.innodb_trx)"
    )
    # Held back only past what the run had already taken: still a warning.
    assert held_back_by(seen, now, lag, open_since_1005, watermark=15) is not None
    # Nothing more to take even without it: the transaction changed nothing.
    assert held_back_by(seen, now, lag, open_since_1005, watermark=20) is None
    # Started after every lag-old read (younger than the lag): the lag alone decides.
    assert held_back_by(seen, now, lag, ServerClock(1060.0, 1059.5), watermark=None) is None
    assert held_back_by(seen, now, lag, ServerClock(1060.0, None), watermark=None) is None


def test_observations_keep_the_server_clock_in_json() -> None:
    clocked, plain = Observation(T0, 12, 1000.5), Observation(T0, 12)
    assert Observation.from_json(clocked.to_json()) == clocked
    assert plain.to_json() == [T0.isoformat(), 12]  # as stored before the server's clock
    assert Observation.from_json(plain.to_json()) == plain


def test_number_marks_compare_by_value_text_marks_as_text() -> None:
    assert later("10.5", "9.5", numeric=True) and not later("9.5", "10.5", numeric=True)
    assert later(str(2**64 - 5), str(2**64 - 6), numeric=True)
    assert later("-1", "-10", numeric=True) and later(10, 9.5)
    # A numeric column's NaN is its greatest value (PostgreSQL), and compares without an error.
    assert later("NaN", "10", numeric=True) and not later("10", "NaN", numeric=True)
    assert not later("NaN", "NaN", numeric=True) and later("Infinity", "1e300", numeric=True)
    # Text cursors keep the text order their database sorts "9" after "10" by.
    assert later("9", "10") and not later("10", "9")
    assert cursor_value("10.5", "decimal(10,1)") == Decimal("10.5")
    assert cursor_value(str(2**64 - 5), "decimal(20,0)") == 2**64 - 5
    assert cursor_value("10.5", "string") == "10.5" and cursor_value(7, "int64") == 7
    # A binary mark is stored as its hex and bound back as its bytes.
    assert cursor_value("00ff", "binary") == b"\x00\xff"
    assert later("0201", "02") and not later("01ff", "02")  # hex text sorts as the bytes do
    assert [numeric_cursor(t) for t in ("int64", "decimal(20,0)", "decimal", "string")] == [
        True,
        True,
        True,
        False,
    ]


@pytest.mark.parametrize(
    ("high", "beyond"),
    [
        ("infinity", True),
        ("-infinity", True),
        ("0044-03-15 BC", True),
        ("10000-01-01 00:00:00+00", True),
        ("9999-12-31 23:59:59.999999+00", False),
        ("0001-01-01", False),
        ("2026-01-01 10:00:00", False),
    ],
)
def test_a_date_mark_beyond_years_1_to_9999_is_named(high: str, beyond: bool) -> None:
    problem = beyond_mark_problem("c", high)
    assert (problem is not None) == beyond
    if problem is not None:
        assert problem.startswith(f"cursorField 'c' holds {high!r} as its greatest value")


@pytest.mark.parametrize(
    ("high", "endless"),
    [
        (float("nan"), True),
        (float("inf"), True),
        ("NaN", True),  # a numeric's text
        (Decimal("Infinity"), True),
        (float("-inf"), False),  # every number comes after it
        (1.5, False),
        ("12345678901234567890.5", False),
        (7, False),
        ("2026-01-01", False),
    ],
)
def test_a_number_mark_with_nothing_after_it_is_named(high: object, endless: bool) -> None:
    problem = endless_mark_problem("c", high)
    assert (problem is not None) == endless
