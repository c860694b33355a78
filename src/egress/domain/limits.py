"""Token-bucket arithmetic of the fair-use limits (the buckets live in the metadata database)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

# Any bucket refills from empty in a minute (``per_minute`` tokens at ``per_minute`` a minute):
# one untouched that long is full, the same as no row at all, so it may be deleted.
FULL_AFTER_S = 60.0


@dataclass(frozen=True)
class Bucket:
    """``per_minute`` tokens a minute, refilled continuously, holding at most ``per_minute``:
    a burst of that many, then one every ``60 / per_minute`` seconds."""

    per_minute: int

    @property
    def capacity(self) -> float:
        return float(self.per_minute)

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0

    def refilled(self, tokens: float, at: datetime, now: datetime) -> float:
        elapsed = max(0.0, (now - at).total_seconds())
        return min(self.capacity, tokens + elapsed * self.per_second)

    def wait(self, level: float) -> float:
        """Seconds until a bucket at ``level`` (< 1) holds one token."""
        return max(0.0, (1.0 - level) / self.per_second)


def retry_after(wait_s: float) -> int:
    """A ``Retry-After`` in whole seconds that is never too early (at least 1)."""
    return max(1, math.ceil(wait_s))
