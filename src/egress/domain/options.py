"""Run options (seed 001/002): date range, filter, selected rows, incremental — the rules."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from egress.domain.catalog import ColumnInfo
from egress.domain.errors import Invalid
from egress.domain.types import parse_decimal

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
    """(key fields, key values per row) for selected rows, or None for "all records".

    ``selectAll: true`` takes an absent or empty ``rows`` (seed 002's own example sends
    ``"rows": []``); each key value must suit its field's logical type (``row_key_value``)."""
    if select_all is None:
        select_all = rows is None
    if select_all:
        if rows:  # None or [] select nothing beyond "all"; a non-empty list contradicts it
            raise Invalid.at(("body", "rows"), "must be empty or omitted when selectAll is true")
        return None
    if not rows:
        raise Invalid.at(("body", "rows"), "is required (and not empty) when selectAll is false")
    if len(rows) > max_rows:
        raise Invalid.at(
            ("body", "rows"), f"has {len(rows)} rows; at most {max_rows} can be selected"
        )
    known = {f.name for f in fields}
    types = {f.name: f.type for f in fields}
    keys = list(primary_key) if primary_key else sorted(rows[0])
    chosen: list[list[Any]] = []
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
        values = []
        for k in keys:
            try:
                values.append(row_key_value(row[k], k, types.get(k)))
            except ValueError as exc:
                raise Invalid.at(("body", "rows", i, k), str(exc)) from exc
        chosen.append(values)
    return keys, chosen


_INTEGER_RANGES = {
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
_INTEGER_TEXT = re.compile(r"-?[0-9]+")
_NUMBER_TEXT = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")
_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}")
_TEXT_TYPES = frozenset({"string", "json", "binary"})
_TEMPORAL_TYPES = frozenset({"date", "time", "timestamp", "timestamptz", "duration"})


def row_key_value(value: Any, field: str, logical: str | None) -> Any:
    """A selected row's key value for a field of type ``logical``, checked before the run so
    that no source reads it its own way (PostgreSQL fails the run on ``'row1'`` for an integer,
    SQLite takes ``true`` for 1). ValueError naming the problem otherwise (README "Run
    options", ``rows``).

    - null: allowed for every type; it matches no record (SQL's ``=`` is never true for NULL).
    - int16/int32/int64: a JSON integer, or a string of ASCII digits with an optional ``-``
      (``"17"``, read as 17), within the type's range.
    - float32/float64, decimal(p,s), decimal: a finite number, or a string spelling one
      (``"10.5"``, as data tables give decimals), kept as given.
    - boolean: ``true`` or ``false`` only.
    - string, json, binary: a string. uuid: a string in UUID form (hyphens optional).
    - date, time, timestamp, timestamptz, duration and any other type: a string or a number
      (SQLite keeps times as unix seconds too), as before.

    A boolean is never a number, nor a number a boolean (Python's ``bool`` is an ``int``)."""
    if value is None or logical is None:
        return value
    where = f"(field {field!r} is {logical})"
    is_bool = isinstance(value, bool)
    is_number = isinstance(value, int | float | Decimal) and not is_bool
    if logical in _INTEGER_RANGES:
        if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
            # int() refuses over 4,300 digits (leading zeros too); past 40 no type holds it
            digits = value.lstrip("-").lstrip("0") or "0"
            number: Any = int(digits) if len(digits) <= 40 else 10**40
            number = -number if value.startswith("-") else number
        elif isinstance(value, int) and not is_bool:
            number = value
        else:
            raise ValueError(f"{_shown(value)} is not an integer {where}")
        low, high = _INTEGER_RANGES[logical]
        if not low <= number <= high:
            raise ValueError(f"{_shown(value)} is out of range {where}: {low} to {high}")
        return number
    if logical in ("float32", "float64", "decimal") or parse_decimal(logical) is not None:
        if is_number and not (isinstance(value, float | Decimal) and not math.isfinite(value)):
            return value
        if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
            if logical.startswith("float") and not math.isfinite(float(value)):
                raise ValueError(f"{_shown(value)} is not a finite number {where}")
            return value
        raise ValueError(f"{_shown(value)} is not a finite number {where}")
    if logical == "boolean":
        if is_bool:
            return value
        raise ValueError(f"{_shown(value)} is not a boolean {where}: write true or false")
    if logical in _TEXT_TYPES or logical == "uuid":
        if not isinstance(value, str):
            raise ValueError(
                f"{_shown(value)} is not a string {where}: write it as text, in quotes"
            )
        if logical == "uuid" and not _UUID_TEXT.fullmatch(value):
            raise ValueError(f"{_shown(value)} is not a UUID {where}")
        return value
    if is_bool or not (is_number or isinstance(value, str)):
        kind = "a date or time" if logical in _TEMPORAL_TYPES else "a string or a number"
        raise ValueError(f"{_shown(value)} is not {kind} {where}")
    return value


def _shown(value: Any) -> str:
    """A value as the request spelled it: ``'row1'``, ``true``, ``1.5`` (long text cut)."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else f"{value[:40]!r}… ({len(value)} characters)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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
