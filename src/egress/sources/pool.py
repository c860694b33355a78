"""The bounded pool of interactive source calls (/test, browsing, describing a SQL template).

A source that hangs holds one of these threads, never one of the API's request threads, and a
full pool refuses at once (429) instead of queueing: requests for a dead server must not pile
up behind each other. The threads are daemons, so a call stuck in a driver cannot hold up the
process at exit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from egress.domain.errors import Busy

T = TypeVar("T")


class SourcePool:
    def __init__(self, size: int, retry_after_s: int) -> None:
        self._size = size
        self._retry_after_s = retry_after_s
        self._slots = threading.BoundedSemaphore(size)
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._started = False
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on a pool thread; raises Busy when every thread is taken. A taken slot
        is a thread of its own (as many threads as slots), so nothing ever waits in line."""
        if not self._slots.acquire(blocking=False):
            raise Busy(
                "too many source calls (connection tests, browsing, describing) are running;"
                " retry later",
                retry_after_s=self._retry_after_s,
            )
        self._start()
        future: Future[T] = Future()
        self._jobs.put((future, fn))
        return future

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            for i in range(self._size):
                threading.Thread(target=self._work, name=f"source-{i}", daemon=True).start()
            self._started = True

    def _work(self) -> None:
        while True:
            future, fn = self._jobs.get()
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn())
                    except BaseException as exc:  # handed to the waiting request
                        future.set_exception(exc)
            finally:
                self._slots.release()
