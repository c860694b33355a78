"""Wakes idle workers when a run is queued, instead of making them wait for the next poll."""

from __future__ import annotations

import threading


class Wakeup:
    """In-process signal: the API and the embedded worker share one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending = 0

    def notify(self) -> None:
        with self._cond:
            self._pending += 1
            self._cond.notify_all()

    def wait(self, timeout: float) -> None:
        with self._cond:
            if self._pending == 0:
                self._cond.wait(timeout)
            self._pending = max(0, self._pending - 1)
