"""The SDK's ``wait`` flow: long polls (``?wait=``) whose answer comes on a change, and a poll
answered early with nothing new (a server whose waits are all taken, or one that ignores
``wait``) followed by a sleep for the rest, so such a server is never polled in a loop."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from egress.client.errors import WaitTimeout
from egress.client.flows import FIRST_POLL_S, Send, Sleep, wait

PATH = "/api/v1/extraction-configurations/c/executions/e"


def _execution(status: str) -> dict[str, Any]:
    run = {
        "run": 1,
        "status": status,
        "processId": None,
        "queuedAt": "2026-12-02T10:00:00Z",
        "startedAt": None,
        "completedAt": None,
        "recordCount": None,
        "errorMessage": None,
        "attempt": 1,
        "file": None,
        "subExtracts": [],
    }
    return {
        "extractConfigurationName": "c",
        "extractConfigurationId": "c",
        "id": "e",
        "latestStatus": status,
        "latestProcessId": None,
        "latestRecordCount": None,
        "createdAt": "2026-12-02T10:00:00Z",
        "trigger": "api",
        "options": {},
        "window": None,
        "progress": None,
        "subExtracts": [],
        "runs": [run],
    }


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _drive(answers: list[tuple[str, float]], timeout: float | None = None) -> list[Any]:
    """Run the flow against scripted answers (status, seconds the request took); the steps
    it asked for, in order (a Send's params, or a Sleep)."""
    clock, steps = Clock(), []
    flow = wait(PATH, timeout, None, clock)
    step = next(flow)
    answers = list(answers)
    try:
        while True:
            if isinstance(step, Send):
                steps.append(step.params)
                status, took = answers.pop(0)
                clock.now += took
                step = flow.send(httpx.Response(200, json=_execution(status)))
            else:
                assert isinstance(step, Sleep)
                steps.append(step)
                clock.now += step.seconds
                step = flow.send(None)
    except StopIteration as done:
        steps.append(done.value.latest_status)
    return steps


def test_each_poll_after_the_first_is_a_long_poll_answered_on_the_change() -> None:
    steps = _drive([("PENDING", 0.01), ("IN_PROGRESS", 0.05), ("COMPLETED", 0.1)])
    # A change answers a long poll early: no sleep follows it, the next one is asked at once.
    assert steps == [
        None,
        {"wait": FIRST_POLL_S},
        {"wait": round(FIRST_POLL_S * 1.5, 3)},
        "COMPLETED",
    ]


def test_an_early_answer_with_nothing_new_is_followed_by_a_sleep_for_the_rest() -> None:
    steps = _drive([("PENDING", 0.01), ("PENDING", 0.05), ("COMPLETED", 0.0)])
    assert steps[:3] == [None, {"wait": FIRST_POLL_S}, Sleep(pytest.approx(FIRST_POLL_S - 0.05))]
    assert steps[3:] == [{"wait": round(FIRST_POLL_S * 1.5, 3)}, "COMPLETED"]


def test_a_long_poll_never_outlasts_the_timeout() -> None:
    clock, asked = Clock(), []
    flow = wait(PATH, 0.25, None, clock)
    step = next(flow)
    for took in (0.0, 0.2):
        asked.append(step.params)
        clock.now += took
        step = flow.send(httpx.Response(200, json=_execution("PENDING")))
    asked.append(step.params)
    assert asked == [None, {"wait": FIRST_POLL_S}, {"wait": pytest.approx(0.05)}]  # what is left
    clock.now += 0.05
    with pytest.raises(WaitTimeout):
        flow.send(httpx.Response(200, json=_execution("PENDING")))
