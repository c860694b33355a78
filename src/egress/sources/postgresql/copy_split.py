"""A split run's CSV through one ``COPY``, each row routed by its split key to its part's
file (issue 19: a split CSV took the Arrow path, 1.35 times the COPY path). Rows are read as
the unsplit COPY reads them, cut into key and row in C (``copy_drain.c``; in Python where that
was not built), and routed a block at a time in Arrow's C.

libpq hands COPY data over one row per call, so a row's bounds are exact whatever its fields
hold (quoted newlines included). The key is the split column's text as the Arrow path reads it
(the same rendering): its own field of the row when the files have the column (a field of
a FORCE_QUOTE column is quoted, the same value always the same way), else written once more
as a leading field of its own, cut off the row. Unquoted a field holds no comma, so the next
comma (or the newline) ends it; quoted (a comma, a quote, a newline, the empty text) it ends
at the first quote that is not doubled; empty and unquoted it is NULL. The row is exactly the
unsplit COPY's row, so parts, ids, names and bytes are the Arrow path's. (A key that never
needs quoting, such as the hex of the text, cost the server a quarter more.)"""

from __future__ import annotations

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
from egress.sources.postgresql.copy_native import QUOTE, Chunk, Key, float_fields, open_drain
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
# Blocks read but not yet routed, at most (1 MiB each).
ROUTING_AHEAD = 2

# The stream a part's rows go to, given the split value's text (None: NULL): one per value.
OpenPart = Callable[[str | None], BinaryIO]


def can_copy_split(field: ColumnInfo) -> bool:
    return field.type in SPLIT_KEYS


def split_field(plan: ReadPlan, split_by: str) -> ColumnInfo:
    return next(f for f in plan.fields if f.name == split_by)


def split_statement(
    select_sql: Callable[[ColumnSql], str], plan: ReadPlan, output: list[str], split_by: str
) -> tuple[str, Key, list[int]]:
    """The COPY of ``plan``'s rows as Egress's CSV of the ``output`` columns, where each
    row holds its key: the split column's own field when the files have it, else a leading
    field of its own (``plan`` reads it even when the files leave it out), cut off; and the
    float fields of the row (after that key) for the C loop to re-lay out."""
    out_plan = replace(plan, fields=[f for f in plan.fields if f.name in output])
    floats = float_fields(out_plan)
    options = f"(FORMAT csv{force_quote(out_plan)})"
    if split_by in output:
        key = Key(output.index(split_by), strip=False)
        return f"COPY ({select_sql(copy_sql)}) TO STDOUT WITH {options}", key, floats
    value = f"q.{_name(split_by)}"  # what copy_sql made of it: the Arrow path's text
    columns = ", ".join(f"q.{_name(n)}" for n in output)
    # A name of its own: FORCE_QUOTE names columns, and the first of a name would take it.
    alias = KEY_ALIAS
    while alias in output:
        alias += "_"
    query = f"SELECT {value} AS {_name(alias)}, {columns} FROM ({select_sql(copy_sql)}) AS q"
    return f"COPY ({query}) TO STDOUT WITH {options}", Key(0, strip=True), floats


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
    statement, key, floats = split_statement(select_sql, plan, output, split_by)
    pg = conn.pgconn
    encoding = conn.info.encoding
    pg.send_query(statement.encode(encoding))
    pg.nonblocking = 1
    parts = _Parts(open_part, csv_header(output), encoding)
    router = _Router(parts)
    try:
        expect_status(pg, next_result(pg), pq.ExecStatus.COPY_OUT, encoding)
        drain = open_drain(pg, BLOCK_BYTES, key, floats)
        due = time.monotonic() + REPORT_S
        for chunk in drain.chunks(REPORT_S):
            router.route(chunk)
            if time.monotonic() >= due:
                on_progress(parts.rows)
                due = time.monotonic() + REPORT_S
        rest = drain.rest()
        end_copy(pg, encoding)
        router.route(rest)
        router.finish()
        on_progress(parts.rows)
        return {_value(key, encoding): n for key, n in parts.counts.items()}
    finally:
        router.stop()
        pg.nonblocking = 0


class _Router:
    """``_Parts.route`` on a thread of its own, the blocks in the order they came: the reading
    thread goes back to the socket at once (routing, hashing and storing a block cost about as
    much as reading it, and the server waits while nobody reads). At most ``ROUTING_AHEAD``
    blocks wait; a routing error is raised by the next ``route`` or by ``finish``."""

    def __init__(self, parts: _Parts) -> None:
        self._parts = parts
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="egress-split")
        self._pending: deque[Future[None]] = deque()

    def route(self, rows: Chunk) -> None:
        self._pending.append(self._thread.submit(self._parts.route, rows))
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
    in the order they first came, as when each row was routed on its own."""

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

    def route(self, rows: Chunk) -> None:
        """A block's rows (keyed) to their keys' streams, each key's rows in one write: the
        rows grouped by key in Arrow's C (one stable sort of the keys' dictionary indices,
        one gather), the keys in the order they first came overall."""
        assert rows.ends is not None and rows.key_ends is not None
        n = len(rows.ends) - 1
        if n == 0:
            return
        rests, keys = _binary(rows.data, rows.ends), _binary(rows.keys, rows.key_ends)
        encoded = keys.dictionary_encode()  # the dictionary in the order keys first come
        grouped = rests.take(pc.sort_indices(encoded.indices))
        counts = pc.value_counts(encoded.indices)
        values, tallies = counts.field("values").to_pylist(), counts.field("counts").to_pylist()
        sizes = dict(zip(values, tallies, strict=True))
        starts, at = [], 0
        for index in range(len(encoded.dictionary)):
            starts.append(at)
            at += sizes[index]
        ranks = [self._rank(key) for key in encoded.dictionary.to_pylist()]
        for index in sorted(range(len(ranks)), key=ranks.__getitem__):
            part = grouped.slice(starts[index], sizes[index])
            self._write(ranks[index], _data(part), sizes[index])
        self.rows += n

    def _rank(self, key: bytes) -> int:
        rank = self._ranks.get(key)
        if rank is None:
            self._add(key)
            rank = self._ranks[key]
        return rank

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


def _binary(data: bytes | memoryview, ends: array[int]) -> pa.LargeBinaryArray:
    return pa.LargeBinaryArray.from_buffers(  # no copy: the bytes as they are
        pa.large_binary(), len(ends) - 1, [None, pa.py_buffer(ends), pa.py_buffer(data)]
    )


def _data(array: pa.LargeBinaryArray) -> memoryview:
    """An array's values, end to end (a view of its data buffer)."""
    _, offsets, data = array.buffers()
    at = memoryview(offsets).cast("q")
    return memoryview(data)[at[array.offset] : at[array.offset + len(array)]]


def _value(key: bytes, encoding: str) -> str | None:
    """The split value's text from its key (the text the Arrow path's router canonicalises)."""
    if not key:
        return None
    if key[0] == QUOTE:
        key = key[1:-1].replace(b'""', b'"')
    return key.decode(encoding)


def _name(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("postgres")
