"""A worker's idle source sessions, kept between runs.

An export chain is many short runs of the same source, one after the other, and a new session
for each (connect, authentication, a fresh backend's cold catalog caches, the session
settings) was a fixed cost of every job (issue 17). The runner lends this cache to a source
that can reuse sessions (``sources.base.ReusesSessions``); the source gives back a session
that is idle (no transaction open) when its run succeeded, and takes one back before
connecting. Each session is checked out by one run at a time (taking removes it), is filed
under a key that binds it to the connection and to a fingerprint of its settings, credentials
and policy (a changed setting or password never finds the old session), and is closed after
``IDLE_S`` unused. Resetting a session's state (transaction, snapshot, SET parameters, temp
tables) before it serves another run is the source's part: it knows how.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

IDLE_S = 10.0  # a chain's next job comes within milliseconds; a pause ends the session
MAX_IDLE = 4  # idle sessions kept per worker, all keys together (the oldest goes first)


class Closable(Protocol):
    def close(self) -> None: ...


def session_key(owner: str, *parts: Any) -> str:
    """The key of ``owner``'s sessions (a connection id): a digest of everything that decides
    what a session is (settings, credentials, policy), so nothing secret is kept in a key."""
    text = json.dumps([owner, *parts], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


class SessionCache:
    def __init__(
        self,
        idle_s: float = IDLE_S,
        max_idle: int = MAX_IDLE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idle_s = idle_s
        self._max = max_idle
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._idle: list[tuple[str, float, Closable]] = []  # (key, given back at, session)
        self._timer: threading.Timer | None = None

    def take(self, key: str) -> Any | None:
        """An idle session filed under ``key``, now the caller's alone; None if there is none."""
        self.sweep()
        with self._lock:
            for i, (k, _at, session) in enumerate(self._idle):
                if k == key:
                    del self._idle[i]
                    return session
        return None

    def give(self, key: str, session: Closable) -> None:
        """Keep ``session`` (idle, its run succeeded) for the next run under ``key``."""
        with self._lock:
            self._idle.append((key, self._monotonic(), session))
            extra = self._idle[: max(0, len(self._idle) - self._max)]
            del self._idle[: len(extra)]
        for _k, _at, old in extra:
            _close(old)
        self._sweep_later()

    def sweep(self) -> None:
        """Close the sessions idle for longer than ``idle_s``."""
        now = self._monotonic()
        with self._lock:
            old = [s for _k, at, s in self._idle if now - at >= self._idle_s]
            self._idle = [e for e in self._idle if now - e[1] < self._idle_s]
        for session in old:
            _close(session)

    def close(self) -> None:
        """Close every idle session (the worker stops)."""
        with self._lock:
            idle, self._idle = self._idle, []
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        for _k, _at, session in idle:
            _close(session)

    def __len__(self) -> int:
        return len(self._idle)

    def _sweep_later(self) -> None:
        """A timer closes what stays idle even when no run comes to sweep."""
        with self._lock:
            if self._timer is not None:
                return
            self._timer = threading.Timer(self._idle_s, self._on_timer)
            self._timer.daemon = True
            self._timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
        self.sweep()
        if len(self):
            self._sweep_later()


def _close(session: Closable) -> None:
    try:
        session.close()
    except Exception:  # a broken session: nothing left to end
        log.debug("closing an idle source session failed", exc_info=True)
