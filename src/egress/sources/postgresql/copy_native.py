"""A COPY's rows read in C (``copy_drain.c``, built with the package) without the GIL.

libpq hands COPY data over one row per call. In Python each row cost a call, an append and
the GIL: ~1 µs a row, as much client CPU as the server's own rendering, and a parallel read's
parts took turns at the GIL instead of reading side by side (bench/README.md, issue 19). The
C loop takes libpq's functions from the libpq psycopg loaded (a connection is only good with
the library that made it). Where the library was not built (no C compiler at install) or
libpq cannot be found, ``open_drain`` gives ``PythonDrain``, the same loop in Python."""

from __future__ import annotations

import ctypes
import functools
import logging
import select
import sys
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from egress.domain.plan import ReadPlan
from egress.sources.native import address, built_library

log = logging.getLogger(__name__)

QUOTE = ord('"')

LIBRARY_NAME = "_copy_drain"
# copy_drain.c's statuses
READY, HELD, DUE, ENDED, FAILED, LOST, NO_KEY, NO_FLOAT = 1, 2, 0, -1, -2, -3, -4, -5
# Bytes a float's text may grow by (copy_drain.c's FLOAT_GROWTH).
FLOAT_GROWTH = 16
# How a float's text is laid out (copy_drain.c's): as Arrow's cast (CSV), as Python's repr (JSONL).
ARROW_LAYOUT, PYTHON_LAYOUT = 0, 1
# Float types whose PostgreSQL text the C loop re-lays out as Arrow's CSV writer writes them.
FLOAT_TYPES = {"float32", "float64"}


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
        ("keys", ctypes.c_void_p),
        ("key_ends", ctypes.c_void_p),
        ("keys_used", ctypes.c_long),
        ("key_field", ctypes.c_long),
        ("strip_key", ctypes.c_long),
        ("float_fields", ctypes.c_void_p),
        ("float_count", ctypes.c_long),
    ]


class _Native:
    """The built loop and the loaded libpq's functions."""

    def __init__(self, drain: Any, copy_floats: Any, libpq: ctypes.CDLL) -> None:
        self.drain = drain
        self.copy_floats = copy_floats
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
    return built_library(__file__, LIBRARY_NAME)


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
    built = ctypes.CDLL(str(library))
    drain = built.egress_copy_drain
    drain.restype = ctypes.c_int
    drain.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(_Libpq),
        ctypes.POINTER(_Block),
        ctypes.c_long,
    ]
    copy_floats = built.egress_copy_floats
    copy_floats.restype = ctypes.c_long
    copy_floats.argtypes = [
        ctypes.c_char_p,
        ctypes.c_long,
        ctypes.c_void_p,
        ctypes.c_long,
        ctypes.c_void_p,
    ]
    return _Native(drain, copy_floats, ctypes.CDLL(libpq))


NATIVE = _load()


@functools.cache
def _say_python_once() -> None:
    log.warning(
        "COPY rows read in Python (about 0.5 CPU s more per million rows): the C loop %s",
        "was not built (no C compiler at install)" if _library() is None else "found no libpq",
    )


@dataclass(frozen=True)
class Key:
    """Where a split COPY's rows hold their key: CSV field ``field`` (0 first), and whether it
    is a leading field of its own, cut off the rows (``strip``)."""

    field: int
    strip: bool


@dataclass(frozen=True)
class Chunk:
    """A run of whole rows, or, keyed (a split), the rows (their rests after the key when it
    is stripped) with where each ends and their keys end to end with where each ends (0 first:
    Arrow's offsets; copies the caller keeps). A row longer than the buffer comes whole and
    alone, without ends."""

    data: bytes | memoryview
    ends: array[int] | None = None
    keys: bytes = b""
    key_ends: array[int] | None = None


def floats_in_c() -> bool:
    """Whether a COPY may carry float columns (only the C loop re-lays them out)."""
    return NATIVE is not None


def float_fields(plan: ReadPlan, layout: int = ARROW_LAYOUT) -> list[int]:
    """The plan's float columns as the C loop takes them: index times 4, plus 1 if single,
    plus 2 for Python's layout (JSONL's; copy_drain.c's ``egress_float_text``). In Python's
    layout a single is the double it widens to (``columns.jsonl_copy_sql``)."""
    return [
        i << 2 | layout << 1 | (field.type == "float32" and layout == ARROW_LAYOUT)
        for i, field in enumerate(plan.fields)
        if field.type in FLOAT_TYPES
    ]


def open_drain(
    pg: Any, block_bytes: int, key: Key | None = None, floats: list[int] | None = None
) -> CopyDrain | PythonDrain:
    """The reader of the COPY in progress on ``pg``: the C loop, else the Python one (which
    cannot re-lay out ``floats``: a plan with floats does not take the COPY path then)."""
    if NATIVE is None:
        _say_python_once()
        assert not floats, "float columns on the COPY path need the C loop"
        return PythonDrain(pg, block_bytes, key)
    return CopyDrain(NATIVE, pg, block_bytes, key, floats or [])


class CopyDrain:
    """One COPY's rows read into blocks of about ``block_bytes`` by the C loop."""

    def __init__(
        self, native: _Native, pg: Any, block_bytes: int, key: Key | None, floats: list[int]
    ) -> None:
        self._native = native
        self._conn = ctypes.c_void_p(pg.pgconn_ptr)
        self._pg = pg
        # Twice the block: a block is handed back once it reaches ``block_bytes``, so a row
        # up to that long always fits; only longer rows are handed back on their own.
        self._buffer = bytearray(2 * block_bytes)
        self._view = memoryview(self._buffer)
        self._block = _Block(address(self._buffer), len(self._buffer), block_bytes, 0, 0, 0)
        self._key = key
        if key is not None:  # a row is two bytes at least (a comma, its newline)
            self._ends = array("q", bytes(8 * (block_bytes // 64)))
            self._key_ends = array("q", bytes(len(self._ends) * 8))
            self._keys = bytearray(len(self._buffer))
            self._block.ends = self._ends.buffer_info()[0]
            self._block.ends_capacity = len(self._ends)
            self._block.keys = address(self._keys)
            self._block.key_ends = self._key_ends.buffer_info()[0]
            self._block.key_field, self._block.strip_key = key.field, key.strip
        self._floats = array("q", floats)
        if floats:
            self._block.float_fields = self._floats.buffer_info()[0]
            self._block.float_count = len(floats)
        self.last = b""  # the last row read (unkeyed)

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
            if block.used or block.keys_used:
                yield self.rest()
            if status in (HELD, NO_KEY, NO_FLOAT):
                row = ctypes.string_at(block.held, block.held_size)
                self._native.free(block.held)
                block.held, block.rows = None, block.rows + 1
                if status != HELD:
                    raise psycopg.DataError(f"a COPY row Egress cannot read: {row[:80]!r}")
                yield self._held(row)
            due = time.monotonic() + report_s

    def _held(self, row: bytes) -> Chunk:
        """A row too long for the block as the C loop would have handed it over."""
        if self._key is None:
            self.last = self._relaid(row)
            return Chunk(self.last)
        key, rest = _key_and_row(row, self._key)
        return keyed_chunk([(key, self._relaid(rest))])

    def _relaid(self, row: bytes) -> bytes:
        """A held row (a stripped key's rest) with its floats re-laid out (as the C loop does
        with the others)."""
        if not self._floats:
            return row
        out = ctypes.create_string_buffer(len(row) + FLOAT_GROWTH * len(self._floats))
        floats = self._floats.buffer_info()[0]
        size = self._native.copy_floats(row, len(row), floats, len(self._floats), out)
        if size < 0:
            raise psycopg.DataError(f"a COPY row Egress cannot read: {row[:80]!r}")
        return out.raw[:size]

    def rest(self) -> Chunk:
        """The rows in the block (unkeyed: a view good until the next read), the block
        emptied."""
        block = self._block
        used, block.used = block.used, 0
        if self._key is None:
            if used:
                self.last = bytes(self._view[block.last : used])
            return Chunk(self._view[:used])
        rows, block.ends_used = block.ends_used, 0
        keys_used, block.keys_used = block.keys_used, 0
        return Chunk(
            bytes(self._view[:used]),
            _offsets(self._ends, rows),
            bytes(self._keys[:keys_used]),
            _offsets(self._key_ends, rows),
        )


def _offsets(ends: array[int], rows: int) -> array[int]:
    offsets = array("q", [0])
    offsets.extend(ends[:rows])
    return offsets


class PythonDrain:
    """``CopyDrain`` in Python, where the C loop was not built: one libpq call and an append
    a row, under the GIL (~1 µs a row)."""

    def __init__(self, pg: Any, block_bytes: int, key: Key | None) -> None:
        self._pg = pg
        self._block_bytes = block_bytes
        self._key = key
        self._pending: list[Any] = []  # the rows read and not yet handed over
        self.rows = 0  # handed over
        self.last = b""

    def chunks(self, report_s: float) -> Iterator[Chunk]:
        """As ``CopyDrain.chunks``."""
        pg, pending = self._pg, self._pending
        get, append = pg.get_copy_data, pending.append
        held = 0  # bytes pending
        due = time.monotonic() + report_s
        # Per row only what must be (no clock read: a row costs the server about a µs).
        while True:
            size, data = get(1)
            if size > 0:
                append(data)
                held += size
                if held >= self._block_bytes:
                    yield self.rest()
                    held, due = 0, time.monotonic() + report_s
            elif size == 0:  # nothing buffered: wait for the socket, then read what came
                if pending and time.monotonic() >= due:  # a slow source: report meanwhile
                    yield self.rest()
                    held, due = 0, time.monotonic() + report_s
                select.select([pg.socket], [], [])
                pg.consume_input()
            else:  # -1: the copy ended (-2, an error, is in the result read next)
                return

    def rest(self) -> Chunk:
        """As ``CopyDrain.rest``."""
        pending = self._pending
        self.rows += len(pending)
        if pending:
            self.last = bytes(pending[-1])
        if self._key is None:
            chunk = Chunk(b"".join(pending))
        else:
            chunk = keyed_rows([bytes(row) for row in pending], self._key)
        pending.clear()
        return chunk


def keyed_rows(rows: list[bytes], key: Key) -> Chunk:
    """Whole rows as the C loop hands them over keyed: the rows (or rests), the keys, where
    each ends."""
    return keyed_chunk([_key_and_row(row, key) for row in rows])


def keyed_chunk(cut: list[tuple[bytes, bytes]]) -> Chunk:
    """Rows cut into (key, row) as a keyed chunk."""
    keys, kept = tuple(k for k, _ in cut), tuple(r for _, r in cut)
    return Chunk(b"".join(kept), _ends(kept), b"".join(keys), _ends(keys))


def _key_and_row(row: bytes, key: Key) -> tuple[bytes, bytes]:
    """A row's key as written (its quotes included), and the row (its rest after the key's
    comma when the key is stripped): copy_drain.c's ``field_bounds`` in Python."""
    at = end = 0
    for field in range(key.field + 1):
        if row[at] == QUOTE:  # ends at its first undoubled quote
            end = row.index(b'"', at + 1)
            while row[end + 1 : end + 2] == b'"':
                end = row.index(b'"', end + 2)
            end += 1
        else:  # at the next comma, or the newline
            end = row.find(b",", at)
            end = len(row) - 1 if end < 0 else end
        if field < key.field:
            at = end + 1
    return row[at:end], (row[end + 1 :] if key.strip else row)


def _ends(values: tuple[bytes, ...]) -> array[int]:
    offsets, end = array("q", [0]), 0
    for value in values:
        end += len(value)
        offsets.append(end)
    return offsets
