"""The channel between a running extraction and the worker that watches over it.

Stop signals come from the watchdog thread (cancel, lease lost, stall, shutdown). Each one
also interrupts the source call in flight, so a run blocked inside a driver call (a lock wait,
a server that went silent) stops as promptly as one between batches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class RunInterrupted(Exception):
    """Base for the reasons a run stops at a batch boundary."""


class RunCancelled(RunInterrupted):
    """A user cancelled the run: publish nothing, end CANCELLED."""


class LeaseLost(RunInterrupted):
    """Another attempt may own the run now: commit nothing at all."""


class RunReleased(RunInterrupted):
    """The worker is shutting down: give the run back to the queue."""


class RunStalled(RunInterrupted):
    """The source sent nothing for the stall limit: this attempt failed; another may follow."""


def stall_reason(stall_s: float) -> str:
    return f"the source sent no data for {stall_s:g} s (EGRESS_SOURCE_STALL_S)"


class RunControl:
    """Progress goes out, stop signals come in; checked between batches, and pushed into the
    source call in flight through the interrupt the runner attaches."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.processed = 0
        # The source's estimate of the rows the run reads, once asked: the heartbeats (or the
        # outcome) record it with the progress.
        self.estimated_rows: int | None = None
        self._now = now
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._lease_lost = threading.Event()
        self._release = threading.Event()
        self._stall: str | None = None
        self._interrupt: Callable[[], None] | None = None
        # Since when the run has waited on its source without a batch or progress; None
        # while it does something else (writing, publishing), which no stall limit covers.
        self._waiting_since: float | None = None
        # When the first stop signal came (the watchdog's clock for taking over).
        self.stopped_at: float | None = None

    # ---------------------------------------------------------- the watchdog's side
    def request_cancel(self) -> None:
        self._stop(self._cancel.set)

    def lease_lost(self) -> None:
        self._stop(self._lease_lost.set)

    def request_release(self) -> None:
        self._stop(self._release.set)

    def stall(self, reason: str) -> None:
        def mark() -> None:
            self._stall = reason

        self._stop(mark)

    @property
    def in_source_call(self) -> bool:
        with self._lock:
            return self._waiting_since is not None

    def stalled(self, limit_s: float) -> bool:
        """The source has sent nothing for ``limit_s`` while the run waited on it."""
        with self._lock:
            since = self._waiting_since
        return since is not None and self._now() - since >= limit_s

    def _stop(self, mark: Callable[[], None]) -> None:
        """Record a stop signal; the first one interrupts the source (for good: every later
        call on it fails too)."""
        with self._lock:
            first = not self._stopped()
            mark()
            if first:
                self.stopped_at = self._now()
            interrupt = self._interrupt if first else None
        if interrupt is not None:
            interrupt()

    # ------------------------------------------------------------- the run's side
    def attach(self, interrupt: Callable[[], None]) -> None:
        """From now on a stop signal also interrupts the source's call in flight."""
        with self._lock:
            self._interrupt = interrupt
            stopped = self._stopped()
        if stopped:
            interrupt()

    @contextmanager
    def awaiting_source(self) -> Iterator[None]:
        """The run waits on its source inside this block (the stall limit runs)."""
        with self._lock:
            self._waiting_since = self._now()
        try:
            yield
        finally:
            with self._lock:
                self._waiting_since = None

    def reason(self) -> RunInterrupted | None:
        """Why the run must stop, most binding first; None while it may go on."""
        if self._lease_lost.is_set():
            return LeaseLost()
        if self._cancel.is_set():
            return RunCancelled()
        if self._stall is not None:
            return RunStalled(self._stall)
        if self._release.is_set():
            return RunReleased()
        return None

    def checkpoint(self) -> None:
        reason = self.reason()
        if reason is not None:
            raise reason

    def report(self, processed: int) -> None:
        self.processed = processed
        with self._lock:
            if self._waiting_since is not None:  # progress from inside a source call (COPY)
                self._waiting_since = self._now()
        self.checkpoint()

    def _stopped(self) -> bool:
        return self.reason() is not None
