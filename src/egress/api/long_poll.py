"""Holding a status read until the status changes: the Egress extra ``?wait=<seconds>`` (an
export request's status, an execution's details).

A client that polls a job every 50 ms learns of its end 25 ms late on average, and each poll
costs a request; one that long-polls asks once and is answered as soon as the status differs
from the one the request found (or when the wait ends, with the status as it then is). The
wait costs no thread: a waiter sleeps in the event loop and looks at the metadata database's
change version (``db/changes.py``: SQLite's data_version, PostgreSQL's LISTEN egress_metadata)
every ``TICK_S``, reading the status again only when the version moved (or, while it is
unknown, every ``BLIND_READ_S``). At most ``MAX_WAITERS`` requests wait at once per process;
past it a request is answered at once, as without ``wait``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Annotated, TypeVar

from fastapi import Query

T = TypeVar("T")

MAX_WAIT_S = 30  # the longest ``wait`` a request may ask for
MAX_WAITERS = 100  # requests holding a wait at once in this process
TICK_S = 0.005  # how often a waiter looks at the version (a memory read or one PRAGMA)
BLIND_READ_S = 0.1  # while the version is unknown, how often a waiter reads the status

WaitSeconds = Annotated[
    float,
    Query(
        ge=0,
        le=MAX_WAIT_S,
        description="Egress extra: hold the answer up to this many seconds until the status "
        "differs from the one it has now (0: answer at once)",
    ),
]


class WaitSlots:
    """The cap on concurrent waiters (``WAITERS``: every route's of this process)."""

    def __init__(self, limit: int = MAX_WAITERS) -> None:
        self._limit = limit
        self._used = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        """Take a slot; False when all are taken (the request is answered at once)."""
        with self._lock:
            if self._used >= self._limit:
                return False
            self._used += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._used -= 1


WAITERS = WaitSlots()


async def until_changed(
    read: Callable[[], Awaitable[T]],
    state: Callable[[T], Hashable],
    wait_s: float,
    version: Callable[[], object | None],
    slots: WaitSlots,
    settled: Callable[[T], bool] = lambda _: False,
    monotonic: Callable[[], float] = time.monotonic,
) -> T:
    """``read()``'s answer once ``state`` of it differs from the first read's, or the last
    read when ``wait_s`` ends (at once when ``wait_s`` is 0, no slot is free, or the first
    read is ``settled``: finished, nothing changes it on its own any more)."""
    if wait_s <= 0:  # a plain poll: not even the version is read
        return await read()
    seen = version()  # before the read: a change committed after it moves the version
    current = await read()
    if settled(current) or not slots.enter():
        return current
    try:
        first = state(current)
        deadline = monotonic() + wait_s
        blind_read_at = monotonic() + BLIND_READ_S
        while (left := deadline - monotonic()) > 0:
            await asyncio.sleep(min(TICK_S, left))
            now = version()
            if now is not None and now == seen:
                continue
            if now is None and monotonic() < blind_read_at:
                continue
            seen, blind_read_at = now, monotonic() + BLIND_READ_S
            current = await read()
            if state(current) != first:
                return current
        return current
    finally:
        slots.leave()
