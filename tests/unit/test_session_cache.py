"""The worker's cache of idle source sessions: one taker per session, by key, closed when idle
too long, past the cap, or when the worker stops."""

from __future__ import annotations

from egress.sources.session_cache import SessionCache, session_key


class Session:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_session_is_taken_once_and_only_under_its_key() -> None:
    cache = SessionCache(idle_s=10, max_idle=4, monotonic=Clock())
    one = Session()
    cache.give("a", one)
    assert cache.take("b") is None
    assert cache.take("a") is one
    assert cache.take("a") is None  # checked out: nobody else gets it
    cache.close()


def test_idle_sessions_close_after_the_idle_time_and_past_the_cap() -> None:
    clock = Clock()
    cache = SessionCache(idle_s=10, max_idle=2, monotonic=clock)
    old, mid, new = Session(), Session(), Session()
    for session in (old, mid, new):
        cache.give("a", session)
    assert old.closed and not mid.closed  # past the cap, the oldest goes
    clock.now = 11
    assert cache.take("a") is None
    assert mid.closed and new.closed
    kept = Session()
    cache.give("a", kept)
    cache.close()
    assert kept.closed and len(cache) == 0


def test_keys_differ_with_any_setting_or_credential() -> None:
    base = session_key("c1", {"host": "h", "port": 5432}, "secret")
    assert base == session_key("c1", {"port": 5432, "host": "h"}, "secret")
    assert base != session_key("c2", {"host": "h", "port": 5432}, "secret")
    assert base != session_key("c1", {"host": "h", "port": 5433}, "secret")
    assert base != session_key("c1", {"host": "h", "port": 5432}, "other")
    assert "secret" not in base
