"""Reading the next batch while the current one is written.

A source's batches come from the database (driver and server busy) and are then encoded
(Arrow kernels, zstd, the CSV writer): one after the other on one thread, each side idles
while the other works. The drivers and pyarrow release the GIL, so reading one batch ahead on
a thread of its own overlaps the two — on the machine of the benchmark, that is what brings a
Parquet extraction level with a bare ADBC → pyarrow loop. Memory: at most ``depth`` batches
more than before.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager
from typing import TypeVar

T = TypeVar("T")

_ITEM, _DONE, _ERROR = "item", "done", "error"
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
    slots: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[str, object]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((_ITEM, item)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((_ERROR, exc))
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
            if kind == _ITEM:
                yield value  # type: ignore[misc]
            elif kind == _DONE:
                return
            else:
                assert isinstance(value, BaseException)
                raise value
    finally:
        stop.set()
        with waiting():
            while thread.is_alive():
                # Emptied, so a producer blocked on a full queue sees the stop flag.
                with contextlib.suppress(queue.Empty):
                    slots.get(timeout=_POLL_S)
            thread.join()
