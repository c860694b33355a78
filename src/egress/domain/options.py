"""Run options (seed 001/002): date range, filter, selected rows, incremental — the rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from egress.domain.catalog import ColumnInfo
from egress.domain.errors import Invalid

# Selected rows travel inside the execution and the query: keep them a bounded list.
DEFAULT_MAX_SELECTED_ROWS = 10_000


@dataclass(frozen=True)
class Bound:
    """One end of a date range: ``value`` compared with >= / <= (inclusive) or < (exclusive)."""

    value: datetime | date
    inclusive: bool


@dataclass(frozen=True)
class DateRange:
    field: str
    start: Bound | None
    end: Bound | None


def checked_utc(value: datetime) -> datetime:
    """An aware timestamp that has a UTC equivalent (sources and the metadata compare in UTC);
    ``0001-01-01T00:00:00+14:00`` has none. ValueError otherwise."""
    try:
        value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(
            f"{value.isoformat()} is out of range: in UTC it must fall between "
            "0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"
        ) from exc
    return value


def day_start(day: date) -> datetime:
    """A plain date as a start: its first instant (midnight UTC)."""
    return datetime.combine(day, time(0), tzinfo=UTC)


def day_after(day: date) -> date:
    """A plain date as an end takes the whole day: it ends before the next day. One rule for a
    run's ``dateTo`` and a configuration's ``endDate`` (README "Dates")."""
    return day + timedelta(days=1)


def day_end(day: date) -> datetime:
    """That end as an instant: the next midnight UTC, exclusive (``9999-12-31`` has no next
    day: the last instant instead)."""
    return datetime.max.replace(tzinfo=UTC) if day == date.max else day_start(day_after(day))


def naive_utc(value: Any) -> Any:
    """An aware timestamp as the naive UTC one that a column without a time zone (read as UTC)
    is compared with; other values unchanged. Dropping the offset without converting first
    would move the instant by the offset."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def utc_text(value: Any) -> Any:
    """ISO timestamp text with a UTC offset (``Z``, ``+02:00``) as the naive UTC text that a
    date or time column is compared with, as ``dateFrom`` is: PostgreSQL's ``timestamp`` and
    MySQL's DATETIME and TIMESTAMP dropped the offset without applying it. Any other value
    unchanged, for the source to read as it reads it."""
    if not isinstance(value, str):
        return value
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            return value
        return naive_utc(checked_utc(moment)).isoformat(sep=" ")
    except ValueError:  # not a timestamp, or none in UTC (0001-01-01T00:00:00+14:00)
        return value


def parse_when(text: str, loc: tuple[str, ...]) -> date | datetime:
    """``2026-01-31`` is a date; ISO timestamps are UTC unless they carry an offset."""
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Invalid.at(loc, f"{text!r} is not an ISO date (2026-01-31) or timestamp") from exc
    try:
        return checked_utc(value if value.tzinfo else value.replace(tzinfo=UTC))
    except ValueError as exc:
        raise Invalid.at(loc, str(exc)) from exc


def date_range(
    date_field: str | None,
    date_from: str | None,
    date_to: str | None,
    to_exclusive: bool = False,
) -> DateRange | None:
    """Inclusive dates: dateTo 2026-01-31 takes all of that day. With ``to_exclusive``
    (``dateToExclusive``) the range is half-open: records before dateTo, so a record at exactly
    midnight belongs to one window only (dateTo 2026-01-31 stops before that day)."""
    if date_from is None and date_to is None:
        return None
    if date_field is None:
        field = "date_from" if date_from is not None else "date_to"
        raise Invalid.at(
            ("body", field), "the template has no dateField, so runs cannot take a date range"
        )
    start = parse_when(date_from, ("body", "date_from")) if date_from else None
    end = parse_when(date_to, ("body", "date_to")) if date_to else None
    if start is not None and end is not None and _as_datetime(start) > _as_datetime(end):
        raise Invalid.at(("body", "date_from"), f"dateFrom {date_from} is after dateTo {date_to}")
    return DateRange(
        field=date_field,
        start=Bound(start, inclusive=True) if start is not None else None,
        end=_end_bound(end, to_exclusive) if end is not None else None,
    )


def _as_datetime(value: date | datetime) -> datetime:
    return value if isinstance(value, datetime) else day_start(value)


def _end_bound(end: date | datetime, exclusive: bool) -> Bound:
    if exclusive:
        return Bound(_as_datetime(end), inclusive=False)
    if isinstance(end, datetime):
        return Bound(end, inclusive=True)
    if end == date.max:  # no next day to stop before: up to the last instant instead
        return Bound(day_end(end), inclusive=True)
    return Bound(day_after(end), inclusive=False)  # the whole last day


def selection(
    rows: list[dict[str, Any]] | None,
    select_all: bool | None,
    fields: list[ColumnInfo],
    primary_key: list[str],
    max_rows: int,
) -> tuple[list[str], list[list[Any]]] | None:
    """(key fields, key values per row) for selected rows, or None for "all records"."""
    if select_all is None:
        select_all = rows is None
    if select_all:
        if rows is not None:
            raise Invalid.at(("body", "rows"), "must be omitted when selectAll is true")
        return None
    if not rows:
        raise Invalid.at(("body", "rows"), "is required (and not empty) when selectAll is false")
    if len(rows) > max_rows:
        raise Invalid.at(
            ("body", "rows"), f"has {len(rows)} rows; at most {max_rows} can be selected"
        )
    known = {f.name for f in fields}
    keys = list(primary_key) if primary_key else sorted(rows[0])
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise Invalid.at(("body", "rows", i), "must be an object")
        missing = [k for k in keys if k not in row]
        if missing:
            raise Invalid.at(
                ("body", "rows", i), f"misses the key field(s) {', '.join(map(repr, missing))}"
            )
        for k in keys:
            if isinstance(row[k], dict | list):
                raise Invalid.at(
                    ("body", "rows", i, k),
                    "must be a single value (a string, number, boolean or null), "
                    "not an object or an array",
                )
        if not primary_key:
            unknown = sorted(set(row) - known)
            if unknown:
                raise Invalid.at(("body", "rows", i), f"unknown field(s) {', '.join(unknown)}")
            if sorted(row) != keys:
                raise Invalid.at(
                    ("body", "rows", i),
                    "without a primary key every row must give the same fields",
                )
    return keys, [[row[k] for k in keys] for row in rows]


@dataclass(frozen=True)
class Window:
    """Incremental window on the cursor field: (low, high]; low None means from the start.

    PostgreSQL snapshot windows (``pg_snapshot`` text) add: rows at or below ``low`` that were
    not visible in ``after`` (the previous run's snapshot) committed behind the mark since, and
    are taken too; ``within`` (the run's own snapshot) keeps a re-read to exactly the rows that
    run saw, so every attempt and re-run reproduces them."""

    field: str
    low: Any
    high: Any
    after: str | None = None
    within: str | None = None
