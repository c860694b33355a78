"""The background-loop skeleton: one round called directly, and the thread that repeats it,
driven by events (no sleeps)."""

from __future__ import annotations

import threading

import pytest

from egress.worker.periodic import Periodic

# Generous bound for a thread to answer; the tests never wait for it when all is well.
DEADLINE_S = 10


def test_a_round_returns_what_it_did() -> None:
    assert Periodic("count", 60, lambda: 3).tick() == 3


def test_a_failing_round_is_logged_and_returns_nothing(caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> int:
        raise RuntimeError("disk on fire")

    assert Periodic("boom", 60, boom).tick() is None
    assert "boom: unexpected error" in caplog.text and "disk on fire" in caplog.text


def test_the_loop_repeats_rounds_past_failures_until_stopped() -> None:
    calls: list[int] = []
    third = threading.Event()

    def round_() -> int:
        calls.append(len(calls))
        if len(calls) == 3:
            third.set()
        if len(calls) < 3:
            raise RuntimeError("transient")
        return len(calls)

    loop = Periodic("repeat", 0, round_)
    loop.start()
    assert loop.running
    assert third.wait(DEADLINE_S)
    assert loop.stop(DEADLINE_S) and not loop.running
    done = len(calls)
    assert done >= 3
    assert loop.tick() == done + 1  # stopped: only a direct call runs a round now


def test_stop_does_not_wait_for_the_next_round_and_the_loop_can_start_again() -> None:
    calls: list[None] = []
    loop = Periodic("hourly", 3600, lambda: calls.append(None))
    loop.start()
    with pytest.raises(RuntimeError, match="already running"):
        loop.start()
    assert loop.stop(DEADLINE_S)
    assert calls == []  # the first round is one interval after start
    loop.start()
    assert loop.running and loop.stop(DEADLINE_S)


def test_a_negative_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Periodic("bad", -1, lambda: None)
