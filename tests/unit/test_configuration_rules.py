"""Which configurations are active and which can be triggered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from egress.domain.configuration import is_active, trigger_blocker
from egress.domain.status import ConfigStatus

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def test_draft_is_never_active_and_cannot_be_triggered() -> None:
    assert not is_active(ConfigStatus.DRAFT, None, None, NOW)
    message = trigger_blocker(ConfigStatus.DRAFT, None, None, NOW)
    assert message is not None and "DRAFT" in message


def test_submitted_without_dates_is_active() -> None:
    assert is_active(ConfigStatus.SUBMITTED, None, None, NOW)
    assert trigger_blocker(ConfigStatus.SUBMITTED, None, None, NOW) is None


def test_active_window_start_inclusive_end_exclusive() -> None:
    s = ConfigStatus.SUBMITTED
    assert is_active(s, NOW, NOW + DAY, NOW)
    assert not is_active(s, NOW + DAY, None, NOW)
    assert not is_active(s, None, NOW, NOW)
    assert is_active(s, None, NOW + DAY, NOW)


def test_past_end_date_blocks_trigger() -> None:
    s = ConfigStatus.SUBMITTED
    message = trigger_blocker(s, None, NOW - DAY, NOW)
    assert message is not None and "endDate" in message
    assert trigger_blocker(s, None, NOW + DAY, NOW) is None


def test_future_start_date_blocks_trigger_until_it_is_reached() -> None:
    s = ConfigStatus.SUBMITTED
    message = trigger_blocker(s, NOW + DAY, None, NOW)
    assert message is not None and "startDate" in message
    assert (NOW + DAY).isoformat() in message
    assert trigger_blocker(s, NOW, None, NOW) is None  # start inclusive, as for is_active
    assert trigger_blocker(s, NOW - DAY, None, NOW) is None


def test_a_plain_end_date_takes_the_whole_day_as_a_runs_date_to_does() -> None:
    """``endDate: "2020-12-31"`` keeps the configuration active all of that day, and a run's
    ``dateTo: "2020-12-31"`` takes the records of all of that day: both end at the next
    midnight UTC (exclusive)."""
    from datetime import date

    from egress.api.native.schemas import ConfigurationOptions
    from egress.domain.options import date_range

    body = ConfigurationOptions.model_validate({"startDate": "2020-12-31", "endDate": "2020-12-31"})
    midnight = datetime(2021, 1, 1, tzinfo=UTC)
    assert body.start_date == datetime(2020, 12, 31, tzinfo=UTC)
    assert body.end_date == midnight
    s = ConfigStatus.SUBMITTED
    assert is_active(s, body.start_date, body.end_date, midnight - timedelta(seconds=1))
    assert not is_active(s, body.start_date, body.end_date, midnight)
    dates = date_range("ordered_at", None, "2020-12-31")
    assert dates is not None and dates.end is not None
    assert (dates.end.value, dates.end.inclusive) == (date(2021, 1, 1), False)
    # A zoned timestamp is taken as given.
    exact = ConfigurationOptions.model_validate({"endDate": "2020-12-31T00:00:00Z"})
    assert exact.end_date == datetime(2020, 12, 31, tzinfo=UTC)
    last = ConfigurationOptions.model_validate({"endDate": "9999-12-31"})
    assert last.end_date == datetime.max.replace(tzinfo=UTC)
