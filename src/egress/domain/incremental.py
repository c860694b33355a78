"""Incremental extraction rules: the safety lag and the observations it is computed from.

A source without snapshots (MySQL/MariaDB, SQLite, files, PostgreSQL views and SQL templates)
cannot tell which rows are still in flight, so a run may only advance the mark to the largest
cursor value the source already held ``lag`` earlier: every transaction that had taken a
smaller value by then has committed (or rolled back) if none stays open longer than the lag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from egress.domain.errors import Invalid

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


def later(value: Any, current: Any) -> bool:
    """Watermarks are ints, floats or ISO-like text of one source: compare like with like."""
    if isinstance(value, int | float) and isinstance(current, int | float):
        return value > current
    return str(value) > str(current)


@dataclass(frozen=True)
class Observation:
    """The cursor's maximum a run saw in the source, and when (the worker's clock)."""

    at: datetime
    high: Any

    def to_json(self) -> list[Any]:
        return [self.at.isoformat(), self.high]

    @classmethod
    def from_json(cls, value: list[Any]) -> Observation:
        return cls(datetime.fromisoformat(value[0]), value[1])


def lagged_mark(observations: list[Observation], now: datetime, lag: timedelta) -> Any:
    """The mark a run may advance to: the newest maximum seen at least ``lag`` before ``now``
    (None when no observation is that old yet: the run takes nothing new)."""
    old_enough = [o for o in observations if o.at <= now - lag]
    return old_enough[-1].high if old_enough else None


def kept_observations(
    observations: list[Observation], now: datetime, lag: timedelta
) -> list[Observation]:
    """What later runs still need: the newest observation already ``lag`` old and all younger
    ones (older ones can never be the newest old enough again)."""
    ordered = sorted(observations, key=lambda o: o.at)
    old_enough = [i for i, o in enumerate(ordered) if o.at <= now - lag]
    kept = ordered[old_enough[-1] :] if old_enough else ordered
    while len(kept) > MAX_OBSERVATIONS:
        kept = [kept[0], *kept[1:-1:2], kept[-1]]  # every other one between the two ends
    return kept
