"""The allocators of a long-running process.

pyarrow allocates through mimalloc by default, which keeps freed pages for reuse: after a run
the server's resident memory stays near its peak, and the peak itself grows by what the
allocator holds on to between batches. jemalloc told to return dirty pages at once
(``decay_ms = 0``) gives them back as each batch is freed: on the benchmark's files → CSV case
the peak above the idle process fell from 228 to 157 MiB (bench/README.md, issue 19).

Not every batch comes from Arrow's pool: the ADBC drivers build theirs with C's ``malloc``.
glibc serves a large block from its own mapping, returned when freed, but raises that size
threshold (up to 32 MiB) each time one is freed, so the next batches of that size stay in the
heap, which it seldom gives back: on the benchmark's Parquet case the server kept 74, then
104, then 121 MiB after three runs, and its peak grew with them. A fixed threshold stops that
(peak 94-99 MiB above idle, 44-49 MiB kept; bench/README.md)."""

from __future__ import annotations

import ctypes
import ctypes.util

import pyarrow as pa

# glibc's mallopt parameter and its documented default, here made fixed.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 128 << 10


def release_promptly() -> None:
    """Make jemalloc, returning freed pages at once, Arrow's default pool (a pyarrow built
    without jemalloc keeps its own), and fix glibc's mapping threshold."""
    _fix_malloc_mmap_threshold()
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:
        return
    pa.set_memory_pool(pool)
    pa.jemalloc_set_decay_ms(0)


def _fix_malloc_mmap_threshold() -> None:
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): its own policy stands
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
