"""A COPY's rows read in C (``copy_drain.c``, built with the package) without the GIL.

libpq hands COPY data over one row per call. In Python each row cost a call, an append and
the GIL: ~1 µs a row, as much client CPU as the server's own rendering, and a parallel read's
parts took turns at the GIL instead of reading side by side (bench/README.md, issue 19). The
C loop takes libpq's functions from the libpq psycopg loaded (a connection is only good with
the library that made it). Where the library was not built (no C compiler at install) or
libpq cannot be found, ``CopyDrain.open`` answers None and ``copy_out`` reads in Python."""

from __future__ import annotations

import ctypes
import functools
import importlib.machinery
import logging
import sys
import time
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

log = logging.getLogger(__name__)

LIBRARY_NAME = "_copy_drain"
READY, HELD, DUE, ENDED, FAILED, LOST = 1, 2, 0, -1, -2, -3


class _Libpq(ctypes.Structure):
    _fields_ = [(name, ctypes.c_void_p) for name in ("get", "free", "consume", "socket")]


class _Block(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("capacity", ctypes.c_long),
        ("ready", ctypes.c_long),
        ("used", ctypes.c_long),
        ("rows", ctypes.c_long),
        ("last", ctypes.c_long),
        ("held", ctypes.c_void_p),
        ("held_size", ctypes.c_int),
        ("ends", ctypes.c_void_p),
        ("ends_capacity", ctypes.c_long),
        ("ends_used", ctypes.c_long),
    ]


class _Native:
    """The built loop and the loaded libpq's functions."""

    def __init__(self, drain: Any, libpq: ctypes.CDLL) -> None:
        self.drain = drain
        self.free = libpq.PQfreemem
        self.free.argtypes = [ctypes.c_void_p]  # not ctypes' default int: a 64-bit pointer
        self.free.restype = None
        self.libpq = _Libpq(
            *(
                ctypes.cast(getattr(libpq, name), ctypes.c_void_p).value
                for name in ("PQgetCopyData", "PQfreemem", "PQconsumeInput", "PQsocket")
            )
        )


def _library() -> Path | None:
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if (path := here / f"{LIBRARY_NAME}{suffix}").exists():
            return path
    return None


def _loaded_libpq() -> str | None:
    """The path of the one libpq this process has loaded (psycopg's), from the memory map."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux
        return None
    found = {line.split()[-1] for line in maps.splitlines() if "/libpq" in line}
    return found.pop() if len(found) == 1 else None


def _load() -> _Native | None:
    psycopg.pq.version()  # libpq loaded, whichever implementation psycopg uses
    library, libpq = _library(), _loaded_libpq()
    if library is None or libpq is None or not sys.platform.startswith("linux"):
        return None
    drain = ctypes.CDLL(str(library)).egress_copy_drain
    drain.restype = ctypes.c_int
    drain.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(_Libpq),
        ctypes.POINTER(_Block),
        ctypes.c_long,
    ]
    return _Native(drain, ctypes.CDLL(libpq))


NATIVE = _load()


@functools.cache
def _say_python_once() -> None:
    log.warning(
        "COPY rows read in Python (about 0.5 CPU s more per million rows): the C loop %s",
        "was not built (no C compiler at install)" if _library() is None else "found no libpq",
    )


# A run of whole rows, and where each ends (0 first: Arrow's offsets) when asked for.
Chunk = tuple[bytes | memoryview, "array[int] | None"]


class CopyDrain:
    """One COPY's rows read into blocks of about ``block_bytes`` by the C loop."""

    def __init__(self, native: _Native, pg: Any, block_bytes: int, with_ends: bool) -> None:
        self._native = native
        self._conn = ctypes.c_void_p(pg.pgconn_ptr)
        self._pg = pg
        # Twice the block: a block is handed back once it reaches ``block_bytes``, so a row
        # up to that long always fits; only longer rows are handed back on their own.
        self._buffer = bytearray(2 * block_bytes)
        self._view = memoryview(self._buffer)
        data = ctypes.addressof(ctypes.c_char.from_buffer(self._buffer))
        self._block = _Block(data, len(self._buffer), block_bytes, 0, 0, 0, None, 0)
        self._ends: array[int] | None = None
        if with_ends:  # a row is one byte at least (its newline)
            self._ends = array("q", bytes(8 * (block_bytes // 64)))
            self._block.ends = self._ends.buffer_info()[0]
            self._block.ends_capacity = len(self._ends)
        self.last = b""  # the last row read

    @classmethod
    def open(cls, pg: Any, block_bytes: int, *, with_ends: bool = False) -> CopyDrain | None:
        if NATIVE is None:
            _say_python_once()
            return None
        return cls(NATIVE, pg, block_bytes, with_ends)

    @property
    def rows(self) -> int:
        return int(self._block.rows)

    def chunks(self, report_s: float) -> Iterator[Chunk]:
        """The COPY in progress's rows, a block at a time as each is ready (and every
        ``report_s`` while the server is slow), each good until the next; the rows still
        held when the COPY ends are ``rest()`` (the caller writes them once the COPY's result
        says it succeeded). Raises ``psycopg.OperationalError`` when the connection fails; a
        failed COPY's error is in its result."""
        block = self._block
        due = time.monotonic() + report_s
        while True:
            wait_ms = max(0, int((due - time.monotonic()) * 1000))
            status = self._native.drain(self._conn, self._native.libpq, block, wait_ms)
            if status in (ENDED, FAILED):
                return
            if status == LOST:
                self._pg.consume_input()  # raises the connection's error
                raise psycopg.OperationalError(self._pg.get_error_message())
            if block.used:
                yield self.rest()
            if status == HELD:
                self.last = ctypes.string_at(block.held, block.held_size)
                self._native.free(block.held)
                block.held, block.rows = None, block.rows + 1
                ends = None if self._ends is None else array("q", [0, len(self.last)])
                yield self.last, ends
            due = time.monotonic() + report_s

    def rest(self) -> Chunk:
        """The rows in the block (a view good until the next read), the block emptied."""
        block = self._block
        if block.used:
            self.last = bytes(self._view[block.last : block.used])
        data = self._view[: block.used]
        block.used = 0
        if self._ends is None:
            return data, None
        ends = array("q", [0])
        ends.extend(self._ends[: block.ends_used])
        block.ends_used = 0
        return data, ends
