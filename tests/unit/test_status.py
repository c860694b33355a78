"""The run state machine: every allowed transition and every forbidden one."""

from __future__ import annotations

import itertools

import pytest

from egress.domain.status import (
    ACTIVE,
    TERMINAL,
    TRANSITIONS,
    RunStatus,
    can_transition,
    cancel_blocker,
    rerun_blocker,
)

S = RunStatus
ALLOWED = {
    (S.ON_HOLD, S.PENDING),
    (S.ON_HOLD, S.CANCELLED),
    (S.PENDING, S.IN_PROGRESS),
    (S.PENDING, S.CANCELLED),
    (S.IN_PROGRESS, S.COMPLETED),
    (S.IN_PROGRESS, S.COMPLETED_NO_DATA),
    (S.IN_PROGRESS, S.FAILED),
    (S.IN_PROGRESS, S.CANCELLED),
    (S.IN_PROGRESS, S.PENDING),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_transition_table(current: RunStatus, target: RunStatus) -> None:
    assert can_transition(current, target) is ((current, target) in ALLOWED)


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
