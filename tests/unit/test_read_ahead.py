"""Read-ahead: the items in order, the producer's error raised in its place, the source closed
on its own thread whether it ends, fails or is abandoned, and every wait inside ``waiting``."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest

from egress.engine.read_ahead import read_ahead


class Source:
    def __init__(self, items: list[int], fail_at: int | None = None) -> None:
        self.items, self.fail_at = items, fail_at
        self.read: list[int] = []
        self.closed_on: str | None = None

    def batches(self) -> Iterator[int]:
        try:
            for i, item in enumerate(self.items):
                if i == self.fail_at:
                    raise ValueError(f"column 'x' broke at {item}")
                self.read.append(item)
                yield item
        finally:
            self.closed_on = threading.current_thread().name


class Waits:
    def __init__(self) -> None:
        self.count = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self.count += 1
        yield


def test_every_item_in_order_then_the_source_is_closed_on_its_thread() -> None:
    source, waits = Source(list(range(100))), Waits()
    assert list(read_ahead([source.batches()], waits)) == list(range(100))
    assert source.closed_on == "egress-read-ahead"
    assert waits.count >= 101  # one wait per item and one for the end


def test_a_source_error_arrives_after_the_items_before_it() -> None:
    source = Source([1, 2, 3, 4], fail_at=2)
    got: list[int] = []
    with pytest.raises(ValueError, match="column 'x' broke at 3"):
        for item in read_ahead([source.batches()], Waits()):
            got.append(item)
    assert got == [1, 2] and source.closed_on == "egress-read-ahead"


def test_abandoning_the_read_stops_the_producer_one_item_ahead() -> None:
    source = Source(list(range(1000)))
    ahead = read_ahead([source.batches()], Waits(), depth=1)
    assert next(ahead) == 0
    ahead.close()
    assert source.closed_on == "egress-read-ahead"
    # Item 0 was taken; at most one sits in the queue and one more was being put.
    assert len(source.read) <= 3


def test_several_streams_give_every_item_once_and_each_closes_on_its_thread() -> None:
    sources = [Source(list(range(k * 100, k * 100 + 50))) for k in range(3)]
    got = list(read_ahead([s.batches() for s in sources], Waits(), depth=3))
    assert sorted(got) == [i for k in range(3) for i in range(k * 100, k * 100 + 50)]
    for s in sources:  # each stream's own order is kept
        assert [i for i in got if s.items[0] <= i <= s.items[-1]] == s.items
        assert s.closed_on == "egress-read-ahead"


def test_one_failing_stream_fails_the_read_and_stops_the_others() -> None:
    good, bad = Source(list(range(10_000))), Source([1, 2, 3], fail_at=1)
    with pytest.raises(ValueError, match="broke at 2"):
        list(read_ahead([good.batches(), bad.batches()], Waits(), depth=2))
    assert good.closed_on == "egress-read-ahead" and len(good.read) < 10_000
