"""Lifecycle rules of an extraction configuration: active window and triggerability."""

from __future__ import annotations

from datetime import datetime

from egress.domain.status import ConfigStatus, RunStatus


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


# What a configuration is doing, as one word (the seed-001 ``status``): a run queued, running
# or waiting → syncing; not active (a draft, or outside its dates) → inactive; its latest run
# failed → error; else active. The schedules issue adds ``paused`` on top of this.
SYNCING, INACTIVE, ERROR, ACTIVE = "syncing", "inactive", "error", "active"


def sync_status(
    status: ConfigStatus,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
    latest_run: RunStatus | None,
) -> str:
    if latest_run in (RunStatus.PENDING, RunStatus.IN_PROGRESS, RunStatus.ON_HOLD):
        return SYNCING
    if not is_active(status, start, end, now):
        return INACTIVE
    if latest_run is RunStatus.FAILED:
        return ERROR
    return ACTIVE
