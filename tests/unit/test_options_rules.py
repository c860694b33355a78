"""Run-option rules at the edges: dates that have no UTC equivalent, the calendar's last day,
and selected rows that are not single values."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from egress.domain.catalog import ColumnInfo
from egress.domain.errors import Invalid
from egress.domain.options import Bound, checked_utc, date_range, selection

FIELDS = [ColumnInfo("id", "int64", False), ColumnInfo("name", "string", True)]


@pytest.mark.parametrize(
    ("date_from", "date_to", "field"),
    [
        ("0001-01-01T00:00:00+14:00", None, "date_from"),
        (None, "9999-12-31T23:59:59-14:00", "date_to"),
        ("0001-01-01T13:59:59+14:00", "2026-01-01", "date_from"),
    ],
)
def test_timestamps_without_a_utc_equivalent_are_invalid(
    date_from: str | None, date_to: str | None, field: str
) -> None:
    with pytest.raises(Invalid) as err:
        date_range("at", date_from, date_to)
    assert err.value.errors[0].loc == ("body", field)
    assert "out of range" in err.value.detail


def test_the_extremes_that_exist_in_utc_are_fine() -> None:
    found = date_range("at", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59+00:00")
    assert found is not None and found.start is not None and found.end is not None
    assert checked_utc(datetime(1, 1, 1, 14, tzinfo=UTC)) == datetime(1, 1, 1, 14, tzinfo=UTC)


def test_the_last_day_of_the_calendar_ends_at_its_last_instant() -> None:
    found = date_range("at", "0001-01-01", "9999-12-31")
    assert found is not None
    assert found.start == Bound(date(1, 1, 1), inclusive=True)
    assert found.end == Bound(datetime.max.replace(tzinfo=UTC), inclusive=True)


@pytest.mark.parametrize("value", [{"a": 1}, [1], [], {}])
@pytest.mark.parametrize("primary_key", [["id"], []])
def test_selected_key_values_must_be_single_values(value: Any, primary_key: list[str]) -> None:
    rows = [{"id": 1}, {"id": value}]
    with pytest.raises(Invalid) as err:
        selection(rows, False, FIELDS, primary_key, 10)
    assert err.value.errors[0].loc == ("body", "rows", 1, "id")


def test_other_fields_of_a_row_may_hold_anything() -> None:
    """With a primary key, other fields are ignored (e.g. rows copied from a data table)."""
    found = selection([{"id": 1, "name": {"nested": [1]}}], False, FIELDS, ["id"], 10)
    assert found == (["id"], [[1]])
