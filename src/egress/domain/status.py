"""Run and configuration statuses, and the one transition table every actor obeys."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    PENDING = "PENDING"
    ON_HOLD = "ON_HOLD"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    COMPLETED_NO_DATA = "COMPLETED_NO_DATA"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class ConfigStatus(StrEnum):
    DRAFT = "DRAFT"
    SUBMITTED = "SUBMITTED"


# At most one run per configuration may be in one of these (a partial unique index enforces it).
ACTIVE: frozenset[RunStatus] = frozenset({RunStatus.PENDING, RunStatus.IN_PROGRESS})
TERMINAL: frozenset[RunStatus] = frozenset(
    {RunStatus.COMPLETED, RunStatus.COMPLETED_NO_DATA, RunStatus.FAILED, RunStatus.CANCELLED}
)
# Seed 000: a re-run needs a Completed or Failed latest run, not "Completed (no data), On hold".
RERUNNABLE: frozenset[RunStatus] = frozenset({RunStatus.COMPLETED, RunStatus.FAILED})

TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.ON_HOLD: frozenset({RunStatus.PENDING, RunStatus.CANCELLED}),
    RunStatus.PENDING: frozenset({RunStatus.IN_PROGRESS, RunStatus.CANCELLED}),
    RunStatus.IN_PROGRESS: frozenset(
        {
            RunStatus.COMPLETED,
            RunStatus.COMPLETED_NO_DATA,
            RunStatus.FAILED,
            RunStatus.CANCELLED,
            # Lease expired (worker lost): back to the queue for another attempt.
            RunStatus.PENDING,
        }
    ),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.COMPLETED_NO_DATA: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


def can_transition(current: RunStatus, target: RunStatus) -> bool:
    return target in TRANSITIONS[current]


def after_lost_attempt(attempt: int, max_attempts: int | None, cancel_requested: bool) -> RunStatus:
    """Where an IN_PROGRESS run goes when an attempt ends without an outcome of its own (its
    worker was lost, gave it back at shutdown, or its source stalled). A requested cancel
    always wins: a cancelled run never runs again. After the last attempt it FAILED; else it
    waits for another. ``max_attempts`` None: the attempt does not count (a shutdown)."""
    if cancel_requested:
        return RunStatus.CANCELLED
    if max_attempts is not None and attempt >= max_attempts:
        return RunStatus.FAILED
    return RunStatus.PENDING


def rerun_blocker(latest: RunStatus) -> str | None:
    """Why a re-run is refused, or None when it is allowed."""
    if latest in RERUNNABLE:
        return None
    return (
        f"the latest run is {latest.value}; a re-run needs the latest run to be COMPLETED or FAILED"
    )


def cancel_blocker(current: RunStatus) -> str | None:
    """Why a cancel is refused, or None when the run can still be cancelled."""
    if can_transition(current, RunStatus.CANCELLED):
        return None
    return (
        f"the run already ended with status {current.value}; only unfinished runs can be cancelled"
    )


class RunKind(StrEnum):
    """What a run does; every kind shares the queue, leases, reaper and commit protocol."""

    EXTRACT = "extract"


def workspace_hold_reason(limit: int) -> str:
    """Why an ON_HOLD run waits when its configuration is free but its workspace is full."""
    return (
        f"waiting for a free slot: the workspace has {limit} runs queued or running "
        "(EGRESS_MAX_RUNS_PER_WORKSPACE)"
    )


# Why a run waits ON_HOLD behind its own configuration (shown when nothing else was stored).
CONFIGURATION_HOLD_REASON = "waiting for the configuration's queued or running run to end"


# The statuses a run is created in: queued at once, or held behind its configuration's active run.
INITIAL: frozenset[RunStatus] = frozenset({RunStatus.PENDING, RunStatus.ON_HOLD})


class IllegalTransition(Exception):
    """A change the transition table forbids: a bug in the caller, never a user's error."""

    def __init__(self, current: RunStatus, target: RunStatus) -> None:
        super().__init__(f"a run may not go from {current.value} to {target.value}")


def check_transition(current: RunStatus, target: RunStatus) -> None:
    if not can_transition(current, target):
        raise IllegalTransition(current, target)
