"""The channel between a running extraction and the worker that watches over it."""

from __future__ import annotations

import threading


class RunInterrupted(Exception):
    """Base for the reasons a run stops at a batch boundary."""


class RunCancelled(RunInterrupted):
    """A user cancelled the run: publish nothing, end CANCELLED."""


class LeaseLost(RunInterrupted):
    """Another attempt may own the run now: commit nothing at all."""


class RunReleased(RunInterrupted):
    """The worker is shutting down: give the run back to the queue."""


class RunControl:
    """Progress goes out, stop signals come in; checked between batches."""

    def __init__(self) -> None:
        self.processed = 0
        self._cancel = threading.Event()
        self._lease_lost = threading.Event()
        self._release = threading.Event()

    def request_cancel(self) -> None:
        self._cancel.set()

    def lease_lost(self) -> None:
        self._lease_lost.set()

    def request_release(self) -> None:
        self._release.set()

    def checkpoint(self) -> None:
        if self._lease_lost.is_set():
            raise LeaseLost
        if self._cancel.is_set():
            raise RunCancelled
        if self._release.is_set():
            raise RunReleased

    def report(self, processed: int) -> None:
        self.processed = processed
        self.checkpoint()
