"""Arrow's allocator for a long-running process.

pyarrow allocates through mimalloc by default, which keeps freed pages for reuse: after a run
the server's resident memory stays near its peak, and the peak itself grows by what the
allocator holds on to between batches. jemalloc told to return dirty pages at once
(``decay_ms = 0``) gives them back as each batch is freed: on the benchmark's files → CSV case
the peak above the idle process fell from 228 to 157 MiB (bench/README.md, issue 19)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

import pyarrow as pa


def release_promptly() -> None:
    """Make jemalloc, returning freed pages at once, Arrow's default pool (a pyarrow built
    without jemalloc keeps its own)."""
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:
        return
    pa.set_memory_pool(pool)
    pa.jemalloc_set_decay_ms(0)


def return_freed_memory() -> None:
    """Give the C heap's free pages back to the system (glibc; elsewhere nothing).

    The ADBC drivers build their batches with ``malloc``, not Arrow's pool, and glibc keeps
    large freed blocks in its heap once it has freed one such (its mmap threshold rises): a
    server kept 72-121 MiB after each Parquet run, and the next run's peak grew by it
    (bench/README.md). Called once a run ends; fixing the threshold instead cost the COPY path
    a fifth more CPU."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, looked up once per process: ``find_library`` runs
    ``ldconfig -p`` in a child process each time, which a worker did after every run (a fork
    of the whole worker for a tiny run's few milliseconds, bench/README.md, the drain)."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim
