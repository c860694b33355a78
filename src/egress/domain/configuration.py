"""Lifecycle rules of an extraction configuration: active window and triggerability."""

from __future__ import annotations

from datetime import datetime

from egress.domain.status import ConfigStatus


def is_active(
    status: ConfigStatus, start: datetime | None, end: datetime | None, now: datetime
) -> bool:
    """Submitted and within its effective dates (start inclusive, end exclusive)."""
    if status is not ConfigStatus.SUBMITTED:
        return False
    if start is not None and now < start:
        return False
    return not (end is not None and now >= end)


def trigger_blocker(
    status: ConfigStatus, start: datetime | None, end: datetime | None, now: datetime
) -> str | None:
    """Why a trigger is refused, or None: only an active configuration runs."""
    if status is ConfigStatus.DRAFT:
        return "the configuration is a DRAFT; submit it before triggering"
    if start is not None and now < start:
        return f"the configuration starts at its startDate ({start.isoformat()}); it cannot run yet"
    if end is not None and now >= end:
        return f"the configuration reached its endDate ({end.isoformat()}); it can no longer run"
    return None
