"""The pool of interactive source calls: a full pool refuses at once, a finished call frees
its slot, and a call's error reaches the caller."""

from __future__ import annotations

import threading

import pytest

from egress.domain.errors import Busy
from egress.sources.pool import SourcePool


def test_a_full_pool_refuses_at_once_and_frees_its_slots() -> None:
    pool = SourcePool(2, retry_after_s=7)
    release = threading.Event()
    held = [pool.submit(release.wait) for _ in range(2)]
    with pytest.raises(Busy) as busy:
        pool.submit(lambda: 1)
    assert busy.value.retry_after_s == 7
    release.set()
    assert [f.result(timeout=5) for f in held] == [True, True]
    # Each slot is released as its call ends (just after the result is set).
    results = []
    for _ in range(50):
        try:
            results.append(pool.submit(lambda: 42).result(timeout=5))
        except Busy:
            continue
    assert results and set(results) == {42}


def test_a_calls_error_reaches_the_caller() -> None:
    pool = SourcePool(1, retry_after_s=1)

    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        pool.submit(fail).result(timeout=5)
