"""A split run's CSV through one ``COPY``: every row led by its split key, routed to its part's
file (issue 19: a split CSV took the Arrow path, 1.35 times the COPY path). Rows are gathered
as the unsplit COPY gathers them and routed a block at a time, mostly in Arrow's C: routing
each row in Python as it came cost the client ~0.2 µs a row more than the unsplit COPY.

libpq hands COPY data over one row per call, so a row's bounds are exact whatever its fields
hold (quoted newlines included). The key is the split column's text as the Arrow path reads it
(the same rendering), written once more as the row's first CSV field: unquoted it holds no
comma, so the first comma ends it; quoted (a comma, a quote, a newline, the empty text) it ends
at the first quote that is not doubled; empty and unquoted it is NULL. The rest of the row is
exactly the unsplit COPY's row, so parts, ids, names and bytes are the Arrow path's. (A key
that never needs quoting, such as the hex of the text, cost the server a quarter more.)"""

from __future__ import annotations

import select
import time
from array import array
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any, BinaryIO

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import pq
from sqlglot import exp

from egress.domain.catalog import ColumnInfo
from egress.domain.plan import ReadPlan
from egress.query.select import ColumnSql
from egress.sources.base import ProgressFn
from egress.sources.postgresql.columns import copy_sql, csv_header, force_quote
from egress.sources.postgresql.copy_native import CopyDrain
from egress.sources.postgresql.copy_out import (
    BLOCK_BYTES,
    REPORT_S,
    end_copy,
    expect_status,
    next_result,
)

# Split fields whose text (as copy_sql renders it) is the text of the value the Arrow path's
# router sees: ``canonical_value`` of a string, an integer, a boolean ('true'/'false').
SPLIT_KEYS = {"int16", "int32", "int64", "boolean", "string", "json", "uuid"}
KEY_ALIAS = "egress split key"
QUOTE = ord('"')
# Blocks read but not yet routed, at most (1 MiB each).
ROUTING_AHEAD = 2
# Up to this many keys, a block's rows are routed in C, a pass over the block for each key;
# past it (a split of many values), row by row, as that then costs less.
HOT_KEYS = 16

# The stream a part's rows go to, given the split value's text (None: NULL); the same stream
# for two values means one file (values whose ids coincide).
OpenPart = Callable[[str | None], BinaryIO]


def can_copy_split(field: ColumnInfo) -> bool:
    return field.type in SPLIT_KEYS


def split_field(plan: ReadPlan, split_by: str) -> ColumnInfo:
    return next(f for f in plan.fields if f.name == split_by)


def split_statement(
    select_sql: Callable[[ColumnSql], str], plan: ReadPlan, output: list[str], split_by: str
) -> str:
    """The COPY of ``plan``'s rows as Egress's CSV of the ``output`` columns, each led by the
    key of ``split_by`` (``plan`` reads it even when the files leave it out)."""
    key = f"q.{_name(split_by)}"  # what copy_sql made of it: the Arrow path's text
    columns = ", ".join(f"q.{_name(n)}" for n in output)
    # A name of its own: FORCE_QUOTE names columns, and the first of a name would take it.
    alias = KEY_ALIAS
    while alias in output:
        alias += "_"
    query = f"SELECT {key} AS {_name(alias)}, {columns} FROM ({select_sql(copy_sql)}) AS q"
    out_plan = replace(plan, fields=[f for f in plan.fields if f.name in output])
    return f"COPY ({query}) TO STDOUT WITH (FORMAT csv{force_quote(out_plan)})"


def copy_split(
    conn: psycopg.Connection[Any],
    select_sql: Callable[[ColumnSql], str],
    plan: ReadPlan,
    split_by: str,
    output: list[str],
    open_part: OpenPart,
    on_progress: ProgressFn,
) -> dict[str | None, int]:
    """``plan``'s rows of the ``output`` columns as Egress's CSV, each part's rows (after a
    header) to ``open_part``'s stream for its value of ``split_by``; the rows of each value.
    Raises ``psycopg.Error``, and whatever ``open_part`` raises (too many parts)."""
    statement = split_statement(select_sql, plan, output, split_by)
    pg = conn.pgconn
    encoding = conn.info.encoding
    pg.send_query(statement.encode(encoding))
    pg.nonblocking = 1
    parts = _Parts(open_part, csv_header(output), encoding)
    router = _Router(parts)
    try:
        expect_status(pg, next_result(pg), pq.ExecStatus.COPY_OUT, encoding)
        drain = CopyDrain.open(pg, BLOCK_BYTES, with_ends=True)
        if drain is None:
            block, ends = _read_in_python(pg, router, parts, on_progress)
        else:
            due = time.monotonic() + REPORT_S
            for data, chunk_ends in drain.chunks(REPORT_S):
                assert chunk_ends is not None
                router.route(bytearray(data), chunk_ends)  # a copy: routed meanwhile
                if time.monotonic() >= due:
                    on_progress(parts.rows)
                    due = time.monotonic() + REPORT_S
            data, rest_ends = drain.rest()
            block, ends = bytearray(data), rest_ends or array("q", [0])
        end_copy(pg, encoding)
        router.route(block, ends)
        router.finish()
        on_progress(parts.rows)
        return {_value(key, encoding): n for key, n in parts.counts.items()}
    finally:
        router.stop()
        pg.nonblocking = 0


def _read_in_python(
    pg: Any, router: _Router, parts: _Parts, on_progress: ProgressFn
) -> tuple[bytearray, array[int]]:
    """The rows read in Python, where the C loop was not built; the last block's rows and
    ends, not yet routed."""
    block, ends = bytearray(), array("q", [0])  # the rows, and where each ends
    end, note = 0, ends.append
    due = time.monotonic() + REPORT_S
    get = pg.get_copy_data
    # Per row about what the unsplit COPY does (append it, note where it ends): a block's
    # rows are routed together (``_Parts.route``), on the router's thread.
    while True:
        size, data = get(1)
        if size > 0:
            block += data
            end += size
            note(end)
            if end >= BLOCK_BYTES:
                router.route(block, ends)
                block, ends = bytearray(), array("q", [0])  # new: the router has the old
                end, note = 0, ends.append
                if time.monotonic() >= due:
                    on_progress(parts.rows)
                    due = time.monotonic() + REPORT_S
        elif size == 0:  # nothing buffered: wait for the socket, then read what came
            if time.monotonic() >= due:  # a slow source: report meanwhile
                on_progress(parts.rows)
                due = time.monotonic() + REPORT_S
            _wait(pg)
        else:  # -1: the copy ended (-2, an error, is in the result read next)
            return block, ends


class _Router:
    """``_Parts.route`` on a thread of its own, the blocks in the order they came: the reading
    thread goes back to the socket at once (routing, hashing and storing a block cost about as
    much as reading it, and the server waits while nobody reads). At most ``ROUTING_AHEAD``
    blocks wait; a routing error is raised by the next ``route`` or by ``finish``."""

    def __init__(self, parts: _Parts) -> None:
        self._parts = parts
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="egress-split")
        self._pending: deque[Future[None]] = deque()

    def route(self, block: bytearray, ends: array[int]) -> None:
        self._pending.append(self._thread.submit(self._parts.route, block, ends))
        while len(self._pending) > ROUTING_AHEAD:
            self._pending.popleft().result()

    def finish(self) -> None:
        """Every block routed (its rows handed to their streams)."""
        while self._pending:
            self._pending.popleft().result()

    def stop(self) -> None:
        """No more blocks; those still waiting are dropped, the one being routed ends first
        (its streams are the caller's to abort after)."""
        for future in self._pending:
            future.cancel()
        self._thread.shutdown(wait=True)


class _Parts:
    """Each key's stream and its rows written. A block's rows go out grouped by key, the keys
    in the order they first came, as when each row was routed on its own: two keys that share
    a stream (their ids coincide) share it in that order."""

    def __init__(self, open_part: OpenPart, header: bytes, encoding: str) -> None:
        self._open = open_part
        self._header = header
        self._encoding = encoding
        self._keys: list[bytes] = []  # in the order they first came: a key's rank
        self._ranks: dict[bytes, int] = {}
        self._streams: list[BinaryIO] = []  # by rank
        self._started: set[int] = set()  # the streams that have their header
        self.counts: dict[bytes, int] = {}
        self.rows = 0

    def route(self, block: bytearray, ends: array[int]) -> None:
        """A block's rows (``ends``: 0, then where each row ends) to their keys' streams, each
        key's rows in one write: while there are few keys, the known keys' rows found in C
        and the others row by row; else all row by row."""
        n = len(ends) - 1
        if n == 0:
            return
        rows = pa.LargeBinaryArray.from_buffers(  # no copy: the block's bytes as they are
            pa.large_binary(), n, [None, pa.py_buffer(ends), pa.py_buffer(block)]
        )
        found = self._matches(rows) if len(self._keys) <= HOT_KEYS else []
        routed = 0
        for rank, _, matched in found:  # known keys: before any key that first comes here
            rests = pc.binary_slice(matched, len(self._keys[rank]) + 1, len(block))
            self._write(rank, _data(rests), len(rests))
            routed += len(rests)
        if routed < n:
            cold = self._by_row(_unmatched(rows, [mask for _, mask, _ in found]))
            for key in sorted(cold, key=self._ranks.__getitem__):
                self._write(self._ranks[key], b"".join(cold[key]), len(cold[key]))
        self.rows += n

    def _matches(self, rows: pa.LargeBinaryArray) -> list[tuple[int, Any, Any]]:
        """Each known key that holds rows of ``rows``: its rank, which rows, and those rows. A
        key's rows start with the key and a comma, as no other key's do: an unquoted key holds
        no comma; a quoted one ends at its first undoubled quote."""
        found = []
        matched = 0
        for rank, key in enumerate(self._keys):
            if matched == len(rows):
                break
            mask = pc.starts_with(rows, key + b",")
            held = rows.filter(mask)
            if len(held):
                found.append((rank, mask, held))
                matched += len(held)
        return found

    def _by_row(self, rows: list[bytes]) -> dict[bytes, list[bytes]]:
        """The rest of each row by its key; a new key's part opened as it first comes."""
        pending: dict[bytes, list[bytes]] = {}
        for row in rows:
            if row[0] == QUOTE:
                key, rest = _quoted(row)
            else:
                key, _, rest = row.partition(b",")
            rests = pending.get(key)
            if rests is None:
                if key not in self._ranks:
                    self._add(key)
                rests = pending[key] = []
            rests.append(rest)
        return pending

    def _add(self, key: bytes) -> None:
        """A new key, its stream opened (and given the header, once a stream)."""
        stream = self._open(_value(key, self._encoding))
        if id(stream) not in self._started:
            self._started.add(id(stream))
            stream.write(self._header)
        self._ranks[key] = len(self._keys)
        self._keys.append(key)
        self._streams.append(stream)
        self.counts[key] = 0

    def _write(self, rank: int, data: bytes | memoryview, rows: int) -> None:
        self._streams[rank].write(data)
        self.counts[self._keys[rank]] += rows


def _unmatched(rows: pa.LargeBinaryArray, masks: list[pa.BooleanArray]) -> list[bytes]:
    """The rows that none of ``masks`` holds."""
    if masks:
        seen = masks[0]
        for mask in masks[1:]:
            seen = pc.or_(seen, mask)
        rows = rows.filter(pc.invert(seen))
    unmatched: list[bytes] = rows.to_pylist()
    return unmatched


def _data(array: pa.LargeBinaryArray) -> memoryview:
    """An array's values, end to end (a view of its data buffer)."""
    _, offsets, data = array.buffers()
    at = memoryview(offsets).cast("q")
    return memoryview(data)[at[array.offset] : at[array.offset + len(array)]]


def _quoted(row: bytes) -> tuple[bytes, bytes]:
    """A row whose key is quoted: the key as written, its quotes included, and the rest."""
    at = 1
    while True:
        end = row.index(b'"', at)
        if row[end + 1 : end + 2] != b'"':  # not a doubled quote: the field ends (a comma)
            return row[: end + 1], row[end + 2 :]
        at = end + 2


def _value(key: bytes, encoding: str) -> str | None:
    """The split value's text from its key (the text the Arrow path's router canonicalises)."""
    if not key:
        return None
    if key[0] == QUOTE:
        key = key[1:-1].replace(b'""', b'"')
    return key.decode(encoding)


def _wait(pg: Any) -> None:
    select.select([pg.socket], [], [])
    pg.consume_input()


def _name(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("postgres")
