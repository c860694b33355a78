"""Incremental extraction rules: the safety lag and the observations it is computed from.

A source without snapshots (MySQL/MariaDB, SQLite, files, PostgreSQL views and SQL templates)
cannot tell which rows are still in flight, so a run may only advance the mark to the largest
cursor value the source already held ``lag`` earlier: every transaction that had taken a
smaller value by then has committed (or rolled back) if none stays open longer than the lag.

MySQL/MariaDB can also show the transactions still open (with the PROCESS privilege): an
observation taken on the server's clock before the oldest of them started is safe whatever its
age, since a transaction takes its AUTO_INCREMENT ids and NOW() values after it starts, above
every maximum read before. Both rules must hold.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from egress.domain.errors import Invalid
from egress.domain.types import parse_decimal, parse_list

# Default lag per source type, for sources that cannot read the rows' commit visibility.
DEFAULT_LAGS: dict[str, timedelta] = {
    # InnoDB assigns AUTO_INCREMENT ids and NOW() at statement time, long before a busy
    # application commits; one minute outlasts ordinary OLTP transactions, and a run every
    # few minutes then delivers rows about a minute late.
    "mysql": timedelta(seconds=60),
    # Views and SQL templates on PostgreSQL have no xmin to read visibility from: as MySQL.
    "postgresql": timedelta(seconds=60),
    # SQLite has one writer at a time: ids and insert times commit in the order they are taken.
    "sqlite": timedelta(0),
    # Files have no transactions: a file is there (renamed into place) or not.
    "files": timedelta(0),
}
# A lag is for transactions in flight, not a schedule: a day bounds a mistyped unit.
MAX_LAG = timedelta(days=1)
# InnoDB takes an AUTO_INCREMENT id just before it marks its transaction started, and NOW() is
# the statement's start, which precedes the transaction's when the statement opens it: a read
# counts as before a transaction only if it was this much earlier (it only delays the mark).
TRX_START_MARGIN_S = 1.0
# Observations kept per configuration (a JSON column): frequent runs under a long lag are
# thinned, which only ever delays the mark, never moves it past a row in flight.
MAX_OBSERVATIONS = 256

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_lag(value: Any, loc: tuple[str | int, ...]) -> timedelta | None:
    """``incrementalLag``: seconds as a number, or text such as ``"90s"``, ``"5m"``, ``"1h"``;
    None keeps the source's default."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Invalid.at(loc, 'must be a duration: seconds, or text such as "30s", "5m", "1h"')
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise Invalid.at(
                loc, f'{value!r} is not a duration: write seconds, or e.g. "30s", "5m", "1h"'
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        seconds = float(value)
    if not 0 <= seconds <= MAX_LAG.total_seconds():
        raise Invalid.at(loc, "must be between 0 seconds and 1 day")
    return timedelta(seconds=seconds)


def lag_seconds(value: Any, loc: tuple[str | int, ...]) -> float | None:
    """The stored form of ``incrementalLag`` (seconds), checked."""
    lag = parse_lag(value, loc)
    return None if lag is None else lag.total_seconds()


def numeric_cursor(logical: str) -> bool:
    """A cursor whose marks are numbers, some stored as their text (``json_value``)."""
    return logical in _NUMBERS or logical == "decimal" or parse_decimal(logical) is not None


_NUMBERS = frozenset({"int16", "int32", "int64", "float32", "float64"})


def cursor_problem(logical: str) -> str | None:
    """Why a column of type ``logical`` cannot be a cursorField, or None. A duration (MySQL's
    ``TIME``, PostgreSQL's ``interval``) is a span, not a position: MySQL's reached past 24
    hours and below zero, and its marks were compared as text (``9:00:00`` after
    ``10:00:00``), so runs took nothing new while COMPLETED. JSON and lists have no order."""
    if logical == "duration":
        return "a duration is a span of time, not a position in the table"
    if logical == "json" or parse_list(logical) is not None:
        return f"a {logical} value has no order"
    return None


_BEYOND_YEARS = re.compile(r"^-?infinity$|^\d{5,}-| BC$")


def beyond_mark_problem(field: str, high: str) -> str | None:
    """Why a date or time cursor whose greatest value is ``high`` (the source's text) cannot
    move, or None: a mark is a date or time of years 1-9999, and ``infinity``, a BC date or
    year 10000 is none (every run failed on the driver's text, naming no column)."""
    if not _BEYOND_YEARS.search(high):
        return None
    return (
        f"cursorField {field!r} holds {high!r} as its greatest value, and an incremental mark"
        " is a date or time within years 1-9999, so no run can read past it: give those"
        " records a value within those years, or read the table through a SQL template that"
        f" leaves them out (WHERE {field} < '10000-01-01')"
    )


def endless_mark_problem(field: str, high: Any) -> str | None:
    """Why a number cursor's greatest value ``high`` can be no mark, or None: NaN (PostgreSQL
    sorts it above every number, and a float NaN compares with none) and +Infinity have no
    value after them, so once such a mark was the watermark every later run took nothing new
    while COMPLETED (before 2026-12-04)."""
    if isinstance(high, bool) or not isinstance(high, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(high))
    except InvalidOperation:
        return None
    if number.is_finite() or (number.is_infinite() and number.is_signed()):
        return None
    shown = "NaN" if number.is_nan() else "Infinity"
    return (
        f"cursorField {field!r} holds {shown} as its greatest value, and no value comes after"
        " it, so incremental runs would take nothing new, ever: give those records a number,"
        " or leave them out of what the template reads (a SQL template's"
        f" WHERE {field} < 'Infinity')"
    )


def later(value: Any, current: Any, numeric: bool = False) -> bool:
    """Watermarks are ints, floats or ISO-like text of one source: compare like with like.
    A numeric cursor's text (a decimal's, an integer's past int64) compares by value: as text
    "10" came before "9", and a run then took nothing new, ever."""
    if isinstance(value, int | float) and isinstance(current, int | float):
        return value > current
    if numeric:
        new, old = Decimal(str(value)), Decimal(str(current))
        if new.is_nan() or old.is_nan():  # PostgreSQL's numeric NaN sorts above every number
            return new.is_nan() and not old.is_nan()
        return new > old
    return str(value) > str(current)


def cursor_value(stored: Any, logical: str) -> Any:
    """A stored mark as it is bound into a query: a number's text as the number (MySQL
    compares a number column with text as doubles, which rounds past 15 digits), binary's
    hex as its bytes (as text it compared with the column's bytes as the hex's characters)."""
    if not isinstance(stored, str):
        return stored
    if numeric_cursor(logical):
        return Decimal(stored)
    return bytes.fromhex(stored) if logical == "binary" else stored


@dataclass(frozen=True)
class ServerClock:
    """Read on the source server right after its maximum: the server's clock, and the start of
    the oldest transaction then open that can write (None: none), both in epoch seconds."""

    now: float
    oldest_open: float | None


@dataclass(frozen=True)
class Observation:
    """The cursor's maximum a run saw in the source, and when: the worker's clock, and the
    source server's own (epoch seconds; None when the source shows no open transactions)."""

    at: datetime
    high: Any
    server_at: float | None = None

    def to_json(self) -> list[Any]:
        stored = [self.at.isoformat(), self.high]
        return stored if self.server_at is None else [*stored, self.server_at]

    @classmethod
    def from_json(cls, value: list[Any]) -> Observation:
        return cls(datetime.fromisoformat(value[0]), value[1], *value[2:3])


def _usable(o: Observation, now: datetime, lag: timedelta, oldest_open: float | None) -> bool:
    """``lag`` old, and taken before the oldest open transaction started (``oldest_open`` is
    whole seconds, truncated, so the margin is between one and two seconds); an observation
    without the server's clock is usable only when nothing is open."""
    if o.at > now - lag:
        return False
    if oldest_open is None:
        return True
    return o.server_at is not None and o.server_at < oldest_open - TRX_START_MARGIN_S


def lagged_mark(
    observations: list[Observation],
    now: datetime,
    lag: timedelta,
    oldest_open: float | None = None,
) -> Any:
    """The mark a run may advance to: the newest maximum seen at least ``lag`` before ``now``
    and before the oldest transaction still open started (None when there is none yet: the
    run takes nothing new)."""
    usable = [o for o in observations if _usable(o, now, lag, oldest_open)]
    return usable[-1].high if usable else None


def held_back_by(
    observations: list[Observation],
    now: datetime,
    lag: timedelta,
    server: ServerClock,
    watermark: Any,
    is_later: Callable[[Any, Any], bool] = later,
) -> str | None:
    """Why the run stopped short, when the oldest open transaction (not the lag) held its mark
    back: without it the run would have taken records past ``watermark`` and past the mark it
    got. A user seeing runs without data wants to know which transaction to end; one younger
    than the lag never changes the mark, so short ones say nothing."""
    if server.oldest_open is None:
        return None
    free = lagged_mark(observations, now, lag)
    held = lagged_mark(observations, now, lag, server.oldest_open)
    if free is None or (held is not None and not is_later(free, held)):
        return None
    if watermark is not None and not is_later(free, watermark):
        return None
    started = datetime.fromtimestamp(server.oldest_open, UTC).replace(tzinfo=None)
    open_s = max(0, round(server.now - server.oldest_open))
    return (
        f"a transaction open on the source server since {started.isoformat(sep=' ')} UTC"
        f" ({open_s} s) holds this run's window back: records seen after it started are"
        " taken once it ends (find it in information_schema.innodb_trx)"
    )


def kept_observations(
    observations: list[Observation],
    now: datetime,
    lag: timedelta,
    oldest_open: float | None = None,
) -> list[Observation]:
    """What later runs still need: the newest usable observation and all younger ones. Older
    ones can never be the newest usable again: the lag only passes, and a transaction open
    later that started before now is open now, so the oldest start only moves forward."""
    ordered = sorted(observations, key=lambda o: o.at)
    usable = [i for i, o in enumerate(ordered) if _usable(o, now, lag, oldest_open)]
    kept = ordered[usable[-1] :] if usable else ordered
    while len(kept) > MAX_OBSERVATIONS:
        kept = [kept[0], *kept[1:-1:2], kept[-1]]  # every other one between the two ends
    return kept
