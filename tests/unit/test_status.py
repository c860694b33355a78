"""The run state machine: every allowed transition and every forbidden one."""

from __future__ import annotations

import pytest

from egress.domain.status import (
    ACTIVE,
    TERMINAL,
    TRANSITIONS,
    RunStatus,
    after_lost_attempt,
    can_transition,
    cancel_blocker,
    rerun_blocker,
)

S = RunStatus


# The table itself is checked against what the repositories really do, on both databases, in
# tests/integration/test_transitions.py (no hand-copied set to drift from it).
def test_every_status_has_a_row_and_terminal_rows_are_empty() -> None:
    assert set(TRANSITIONS) == set(S)
    for status in TERMINAL:
        assert TRANSITIONS[status] == frozenset()
    assert ACTIVE == {S.PENDING, S.IN_PROGRESS}


@pytest.mark.parametrize("status", [S.COMPLETED, S.FAILED])
def test_rerun_allowed_after_completed_or_failed(status: RunStatus) -> None:
    assert rerun_blocker(status) is None


@pytest.mark.parametrize(
    "status", [S.PENDING, S.ON_HOLD, S.IN_PROGRESS, S.COMPLETED_NO_DATA, S.CANCELLED]
)
def test_rerun_refused_names_the_status(status: RunStatus) -> None:
    message = rerun_blocker(status)
    assert message is not None
    assert status.value in message
    assert "COMPLETED or FAILED" in message


@pytest.mark.parametrize("status", [S.PENDING, S.ON_HOLD, S.IN_PROGRESS])
def test_unfinished_runs_can_be_cancelled(status: RunStatus) -> None:
    assert cancel_blocker(status) is None


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_finished_runs_cannot_be_cancelled(status: RunStatus) -> None:
    message = cancel_blocker(status)
    assert message is not None and status.value in message


@pytest.mark.parametrize(
    ("attempt", "max_attempts", "cancel_requested", "expected"),
    [
        (1, 3, False, S.PENDING),
        (2, 3, False, S.PENDING),
        (3, 3, False, S.FAILED),
        (1, 1, False, S.FAILED),
        (7, None, False, S.PENDING),  # a shutdown hand-back does not count against attempts
        (1, 3, True, S.CANCELLED),
        (3, 3, True, S.CANCELLED),
        (7, None, True, S.CANCELLED),
    ],
)
def test_a_lost_attempt_requeues_fails_after_the_last_and_a_cancel_always_wins(
    attempt: int, max_attempts: int | None, cancel_requested: bool, expected: RunStatus
) -> None:
    target = after_lost_attempt(attempt, max_attempts, cancel_requested)
    assert target is expected
    assert can_transition(S.IN_PROGRESS, target)
