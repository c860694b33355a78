"""The skeleton of every background loop (the reaper today; the scheduler, retention and
webhook delivery later): call ``run_once`` every ``interval`` seconds on a daemon thread.

``run_once`` returns what it did, so tests call it (or ``tick``) directly instead of waiting
for the thread; the thread only adds the timing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from egress.db.engine import unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


class Periodic(Generic[T]):
    def __init__(self, name: str, interval: float, run_once: Callable[[], T]) -> None:
        if interval < 0:
            raise ValueError(f"{name}: interval must not be negative, got {interval}")
        self.name = name
        self.interval = interval
        self.run_once = run_once
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def tick(self) -> T | None:
        """One round as the loop runs it: an error is logged, and the loop goes on."""
        try:
            return self.run_once()
        except Exception as exc:
            log_round_error(self.name, exc)
            return None

    def start(self) -> None:
        """Run ``run_once`` every ``interval`` seconds, the first time one interval from now."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self._stop.clear()
        # Daemon: a round stuck in I/O must not keep the process alive at exit.
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, wait_s: float = 0.0) -> bool:
        """Stop after the current round (if any); wait up to ``wait_s`` for it to end. True
        when the loop has ended."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(wait_s)
        return not self.running

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()


def log_round_error(what: str, exc: Exception) -> None:
    """A background round's failure: one line when the metadata database is down or restarting
    (the next round retries; a traceback a second would bury the log), a traceback otherwise."""
    if (detail := unavailable(exc)) is not None:
        log.warning("%s: %s (%s)", what, detail, getattr(exc, "orig", exc))
    else:
        log.error("%s: unexpected error", what, exc_info=exc)
