"""Holding a status read until the status changes: the Egress extra ``?wait=<seconds>`` (an
export request's status, an execution's details).

A client that polls a job every 50 ms learns of its end 25 ms late on average, and each poll
costs a request; one that long-polls asks once and is answered as soon as the status differs
from the one the request found (or when the wait ends, with the status as it then is). The
wait costs no thread: waiters sleep in the event loop while one task (``_Ticks``, per version
source and event loop, alive while anyone waits) looks at the metadata database's change
version (``db/changes.py``: SQLite's data_version, PostgreSQL's LISTEN egress_metadata) every
``TICK_S`` for all of them, and wakes them when it moved; each reads its status again then (or,
while the version is unknown, every ``BLIND_READ_S``). A timer and a look per waiter every tick
cost ~4 % of a core per waiting client (bench/README.md). At most ``MAX_WAITERS`` requests wait
at once per process; past it a request is answered at once, as without ``wait``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Annotated, TypeVar

from fastapi import Query

T = TypeVar("T")
log = logging.getLogger(__name__)

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
    ticks = _Ticks.joined(version)
    try:
        first = state(current)
        deadline = monotonic() + wait_s
        blind_read_at = monotonic() + BLIND_READ_S
        while (left := deadline - monotonic()) > 0:
            now = ticks.current
            if now is not None and now == seen:
                await ticks.moved(left)
                continue
            if now is None and (blind := blind_read_at - monotonic()) > 0:
                await ticks.moved(min(left, blind))
                continue
            seen, blind_read_at = now, monotonic() + BLIND_READ_S
            current = await read()
            if state(current) != first:
                return current
        return current
    finally:
        ticks.leave()
        slots.leave()


class _Ticks:
    """The version looked at every ``TICK_S`` while anyone waits on it, for all waiters."""

    def __init__(self, version: Callable[[], object | None]) -> None:
        self._version = version
        self.current = version()
        self._moved = asyncio.Event()
        self._waiters = 0
        self._task: asyncio.Task[None] | None = None  # held: the loop keeps only a weak one

    @classmethod
    def joined(cls, version: Callable[[], object | None]) -> _Ticks:
        """The running ticks of ``version`` (started if none), with one waiter more."""
        loop = asyncio.get_running_loop()
        running = _TICKING.setdefault(loop, {})
        ticks = running.get(version)
        if ticks is None:
            ticks = running[version] = cls(version)
            ticks._task = loop.create_task(ticks._run(loop))
        ticks._waiters += 1
        return ticks

    def leave(self) -> None:
        self._waiters -= 1

    async def moved(self, timeout: float) -> None:
        """Back when the version moves, or after ``timeout``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._moved.wait(), timeout)

    async def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while self._waiters:
                await asyncio.sleep(TICK_S)
                try:
                    now = self._version()
                except Exception:  # unknown: the waiters read now and then meanwhile
                    log.warning("the metadata change version could not be read", exc_info=True)
                    now = None
                if now != self.current:
                    self.current = now
                    moved, self._moved = self._moved, asyncio.Event()
                    moved.set()
        finally:  # at once when the last waiter left: no await between, none joins meanwhile
            running = _TICKING.get(loop, {})
            if running.get(self._version) is self:
                del running[self._version]
            if not running:
                _TICKING.pop(loop, None)


# Per event loop (asyncio's events belong to one) and version source, while anyone waits.
_TICKING: dict[asyncio.AbstractEventLoop, dict[Callable[[], object | None], _Ticks]] = {}
