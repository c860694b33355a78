"""When a run that failed for a transient reason is tried again: exponential backoff with jitter.

Pure: the attempt number and a random source in, a delay out. Which failures are transient is
decided at the edge (engine/faults.py), from the exception a driver or the store raised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Backoff:
    """Attempt n waits between half and all of ``min(max_s, base_s * 2**(n-1))`` before the
    next one ("equal jitter"): retries of many runs spread out, yet each one always waits."""

    base_s: float
    max_s: float

    def ceiling(self, attempt: int) -> float:
        """The longest wait after attempt ``attempt`` (1-based) failed."""
        # The exponent is capped so that a large attempt number cannot overflow the float.
        return min(self.max_s, self.base_s * 2.0 ** min(attempt - 1, 62))

    def delay(self, attempt: int, random: Callable[[], float]) -> timedelta:
        """The wait after attempt ``attempt`` failed; ``random()`` is uniform in [0, 1)."""
        cap = self.ceiling(attempt)
        return timedelta(seconds=cap / 2 + random() * cap / 2)
