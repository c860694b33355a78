"""What the database said about a credential, remembered for at most ``ttl_s`` seconds.

Every request authenticates, and polling clients make many requests: looking a token (or an
access token's subject) up in the metadata database each time would put a query in front of
every poll. So the answer is kept for ``EGRESS_REVOCATION_CACHE_S`` (default 5 s) — which is
exactly how long a revocation, a removed user or a lowered role can take to be noticed. The
cache lives on the Container (one per process); each API replica has its own, so the bound
holds on every replica. Expiry times are checked against the clock on every request, never
cached: an access token's verified signature is remembered, never its expiry. The failed
sign-in limit keeps here, the same way, which addresses may still sign in
(``services/limits.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")
# A bound on memory: past this many entries the cache starts again (a burst of distinct
# credentials then costs one database read each, as without a cache).
MAX_ENTRIES = 10_000
# Set by ``only_remembered``: this task (or thread) must not read the database.
_ONLY_REMEMBERED: ContextVar[bool] = ContextVar("only_remembered", default=False)


class NotRemembered(Exception):
    """Within ``only_remembered``: the answer would need a database read."""


class RevocationCache:
    def __init__(self, ttl_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._now = monotonic
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The remembered answer for ``key``, or ``load()`` (remembered unless it is None, so
        that a credential made a moment ago is never refused from memory)."""
        if self.ttl_s > 0:
            now = self._now()
            with self._lock:
                found = self._entries.get(key)
            if found is not None and found[0] > now:
                value: T = found[1]
                return value
        if _ONLY_REMEMBERED.get():
            raise NotRemembered(key)
        value = load()
        if self.ttl_s > 0 and value is not None:
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key] = (self._now() + self.ttl_s, value)
        return value

    def forget(self, key: Hashable) -> None:
        """This process changed what ``key`` stands for: its next request reads it again."""
        with self._lock:
            self._entries.pop(key, None)


@contextmanager
def only_remembered() -> Iterator[None]:
    """Within it, ``get`` answers from memory or raises NotRemembered instead of loading:
    the event loop may then authenticate a request itself, without a hop to a thread."""
    token = _ONLY_REMEMBERED.set(True)
    try:
        yield
    finally:
        _ONLY_REMEMBERED.reset(token)
