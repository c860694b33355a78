"""Batches encoded on threads, their bytes written in order by the caller.

A text writer (CSV) spends most of a run's client CPU turning Arrow batches into text, in
Arrow's kernels and CSV writer, which release the GIL; the caller then hashes and stores the
bytes. Done in one thread, a run used about one core while the other sat idle (files →
CSV: 2.4 CPU s in 2.6 s). Here up to ``IN_FLIGHT`` batches are encoded at once on a pool
shared by every writer of the process, and the caller writes each one's bytes, in the order the
batches came, as soon as it is its turn: the bytes are exactly those of encoding the batches one
after the other. Memory: at most ``IN_FLIGHT`` batches and their text are held.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

import pyarrow as pa

# Batches being encoded at once per writer: two keep two cores busy while the caller writes.
IN_FLIGHT = 2
_pools: dict[int, ThreadPoolExecutor] = {}  # by process: a forked child makes its own
_pools_lock = threading.Lock()


def _encoders() -> ThreadPoolExecutor:
    """This process's pool (a pool inherited through a fork has no threads behind it)."""
    pid = os.getpid()
    with _pools_lock:
        pool = _pools.get(pid)
        if pool is None:
            workers = max(IN_FLIGHT, os.cpu_count() or 1)
            pool = _pools[pid] = ThreadPoolExecutor(workers, thread_name_prefix="egress-encode")
        return pool


Encode = Callable[[pa.RecordBatch], pa.Buffer | bytes]


class Pipeline:
    def __init__(self, out: BinaryIO, encode: Encode) -> None:
        self._out = out
        self._encode = encode
        self._pending: deque[Future[pa.Buffer | bytes]] = deque()

    def write(self, batch: pa.RecordBatch) -> None:
        """Queue ``batch``; the oldest batches' bytes are written once more than
        ``IN_FLIGHT`` wait. An encoding's error is raised here or by ``flush``."""
        self._pending.append(_encoders().submit(self._encode, batch))
        while len(self._pending) > IN_FLIGHT:
            self._write_oldest()

    def flush(self) -> None:
        """Every queued batch's bytes written."""
        while self._pending:
            self._write_oldest()

    def _write_oldest(self) -> None:
        future = self._pending.popleft()
        try:
            self._out.write(future.result())
        except BaseException:
            self._drop()
            raise

    def _drop(self) -> None:
        """After a failure: what was queued is not written (what runs ends on its own)."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
