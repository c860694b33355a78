"""A worker's wake-ups: a notification nobody waited for wakes the next wait, but a worker
remembers no more of them than it has slots (each would be a claim of an empty queue)."""

from __future__ import annotations

from egress.worker.wakeup import Wakeup


def test_notifications_heard_while_every_slot_was_busy_wake_one_wait_per_slot() -> None:
    wakeup = Wakeup()
    wakeup.keep_at_most(2)
    for _ in range(100):  # a drain's runs, released while the slots were busy
        wakeup.notify()
    assert wakeup.wait(0) and wakeup.wait(0)
    assert not wakeup.wait(0)  # the third waits for the next notification
    wakeup.notify()
    assert wakeup.wait(0)
