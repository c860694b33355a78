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
    assert list(read_ahead(source.batches(), waits)) == list(range(100))
    assert source.closed_on == "egress-read-ahead"
    assert waits.count >= 101  # one wait per item and one for the end


def test_a_source_error_arrives_after_the_items_before_it() -> None:
    source = Source([1, 2, 3, 4], fail_at=2)
    got: list[int] = []
    with pytest.raises(ValueError, match="column 'x' broke at 3"):
        for item in read_ahead(source.batches(), Waits()):
            got.append(item)
    assert got == [1, 2] and source.closed_on == "egress-read-ahead"


def test_abandoning_the_read_stops_the_producer_one_item_ahead() -> None:
    source = Source(list(range(1000)))
    ahead = read_ahead(source.batches(), Waits(), depth=1)
    assert next(ahead) == 0
    ahead.close()
    assert source.closed_on == "egress-read-ahead"
    # Item 0 was taken; at most one sits in the queue and one more was being put.
    assert len(source.read) <= 3
