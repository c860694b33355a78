"""Reading the next batch while the current one is written.

A source's batches come from the database (driver and server busy) and are then encoded
(Arrow kernels, zstd, the CSV writer): one after the other on one thread, each side idles
while the other works. The drivers and pyarrow release the GIL, so reading one batch ahead on
a thread of its own overlaps the two — on the machine of the benchmark, that is what brings a
Parquet extraction level with a bare ADBC → pyarrow loop. Memory: at most ``depth`` batches
more than before (one, by default).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager
from typing import TypeVar

T = TypeVar("T")

_ITEM, _DONE, _ERROR = "item", "done", "error"
_END = object()
_POLL_S = 0.05


def read_ahead(
    items: Iterator[T],
    waiting: Callable[[], AbstractContextManager[object]],
    depth: int = 1,
) -> Generator[T, None, None]:
    """``items`` produced on a thread of their own, at most ``depth`` ahead of the consumer.

    The producer thread owns ``items`` from its first to its last step and closes it (a
    generator's ``finally`` runs there, where it ran). Every wait of the consumer on the
    producer runs inside ``waiting()`` (the stall limit: a stop signal interrupts the source,
    which ends the producer). An error of the producer is raised to the consumer, in order;
    closing this generator early stops the producer at its next batch and waits for it."""
    # Never full: the semaphore below bounds what is in it.
    slots: queue.Queue[tuple[str, object]] = queue.Queue()
    stop = threading.Event()

    # The producer reads the next item only once the consumer has taken the last one but
    # ``depth``: at most depth + 1 items exist at once (one being written, depth being read).
    room = threading.Semaphore(depth)

    def wait_for_room() -> bool:
        while not stop.is_set():
            if room.acquire(timeout=_POLL_S):
                return True
        return False

    def produce() -> None:
        try:
            while wait_for_room():
                item = next(items, _END)
                if item is _END:
                    slots.put((_DONE, None))
                    return
                slots.put((_ITEM, item))
        except BaseException as exc:  # handed to the consumer, raised there
            slots.put((_ERROR, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="egress-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            with waiting():
                kind, value = slots.get()
            room.release()
            if kind == _ITEM:
                yield value  # type: ignore[misc]
            elif kind == _DONE:
                return
            else:
                assert isinstance(value, BaseException)
                raise value
    finally:
        stop.set()  # a producer waiting for room sees it; one reading finishes that item first
        with waiting():
            thread.join()
