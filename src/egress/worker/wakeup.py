"""Wakes idle workers when a run is queued, instead of making them wait for the next poll."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable


class Wakeup:
    """In-process signal: the API and the embedded worker share one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending = 0
        self._most: int | None = None

    def keep_at_most(self, pending: int) -> None:
        """Remember no more than ``pending`` notifications nobody waited for: one for each of
        the worker's slots is all it needs (a slot that claimed a run claims again before it
        waits). Counted without a bound, the notifications of a drain's runs, heard while
        every slot was busy, became as many empty claims once the queue was empty (issue 19)."""
        self._most = pending

    def notify(self) -> None:
        with self._cond:
            self._pending += 1
            if self._most is not None:
                self._pending = min(self._pending, self._most)
            self._cond.notify_all()

    def wait(self, timeout: float) -> bool:
        """Until a notification (one nobody waited for counts), at most ``timeout`` seconds;
        whether one came."""
        with self._cond:
            if self._pending == 0:
                self._cond.wait(timeout)
            woken = self._pending > 0
            self._pending = max(0, self._pending - 1)
            return woken


class PipeWakeup(Wakeup):
    """The API's end when its worker is a child process: each notify is one byte on a pipe,
    which the child's ``relay`` turns into a notify of its own ``Wakeup``."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        os.set_blocking(fd, False)  # a trigger never waits on a busy worker
        self._fd = fd

    def notify(self) -> None:
        # A full pipe already holds wakeups the worker has yet to read; a child being
        # restarted finds the run by polling.
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(self._fd, b"\x01")


def relay(fd: int, wakeup: Wakeup, on_close: Callable[[], None]) -> threading.Thread:
    """Start a thread turning the bytes of a ``PipeWakeup`` into ``wakeup.notify()`` calls;
    ``on_close`` runs when the writer is gone (the API process ended)."""

    def run() -> None:
        while chunk := os.read(fd, 512):
            for _ in chunk:
                wakeup.notify()
        on_close()

    thread = threading.Thread(target=run, name="wakeup-relay", daemon=True)
    thread.start()
    return thread
