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
    streams: list[Iterator[T]],
    waiting: Callable[[], AbstractContextManager[object]],
    depth: int = 1,
) -> Generator[T, None, None]:
    """The items of ``streams`` produced on threads of their own (one per stream: the
    partitions of a parallel read), interleaved as they come, at most ``depth`` ahead of the
    consumer in all.

    Each producer thread owns its stream from its first to its last step and closes it (a
    generator's ``finally`` runs there, where it ran). Every wait of the consumer on the
    producers runs inside ``waiting()`` (the stall limit: a stop signal interrupts the
    source, which ends the producers). The first error of a producer is raised to the
    consumer, in order; closing this generator early (or that error) stops every producer at
    its next item and waits for them."""
    # Never full: the semaphore below bounds what is in it.
    slots: queue.Queue[tuple[str, object]] = queue.Queue()
    stop = threading.Event()

    # A producer reads its next item only once the consumer has taken all but ``depth``:
    # at most depth + producers items exist at once (``depth`` queued, one being read by each).
    room = threading.Semaphore(depth)

    def wait_for_room() -> bool:
        while not stop.is_set():
            if room.acquire(timeout=_POLL_S):
                return True
        return False

    def produce(items: Iterator[T]) -> None:
        try:
            while wait_for_room():
                item = next(items, _END)
                if item is _END:
                    room.release()  # took a place for nothing
                    slots.put((_DONE, None))
                    return
                slots.put((_ITEM, item))
        except BaseException as exc:  # handed to the consumer, raised there
            slots.put((_ERROR, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    threads = [
        threading.Thread(target=produce, args=(s,), name="egress-read-ahead", daemon=True)
        for s in streams
    ]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            with waiting():
                kind, value = slots.get()
            if kind == _ITEM:
                room.release()
                yield value  # type: ignore[misc]
            elif kind == _DONE:
                running -= 1
            else:
                assert isinstance(value, BaseException)
                raise value
    finally:
        stop.set()  # a producer waiting for room sees it; one reading finishes that item first
        with waiting():
            for thread in threads:
                thread.join()
