"""A split run's CSV through one ``COPY``: every row led by its split key, each routed to its
part's file as it arrives (issue 19: a split CSV took the Arrow path, 1.35 times the COPY path).

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
from collections.abc import Callable
from dataclasses import replace
from typing import Any, BinaryIO

import psycopg
from psycopg import pq
from sqlglot import exp

from egress.domain.catalog import ColumnInfo
from egress.domain.plan import ReadPlan
from egress.query.select import ColumnSql
from egress.sources.base import ProgressFn
from egress.sources.postgresql.columns import copy_sql, csv_header, force_quote
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
    header = csv_header(output)
    pg.send_query(statement.encode(encoding))
    pg.nonblocking = 1
    try:
        expect_status(pg, next_result(pg), pq.ExecStatus.COPY_OUT, encoding)
        pending: dict[bytes, list[bytes]] = {}  # each key's rows not written yet
        counts: dict[bytes, int] = {}  # each key's rows written
        streams: dict[bytes, BinaryIO] = {}
        started: set[int] = set()  # the streams that have their header
        held = 0  # the bytes of the pending rows
        due = time.monotonic() + REPORT_S
        get = pg.get_copy_data
        # Per row only what must be: split off the key, keep the rest, add up its bytes.
        while True:
            size, data = get(1)
            if size > 0:
                row = bytes(data)  # libpq lends a view
                if row[0] == QUOTE:
                    key, rest = _quoted(row)
                else:
                    key, _, rest = row.partition(b",")
                rows = pending.get(key)
                if rows is None:
                    stream = open_part(_value(key, encoding))
                    if id(stream) not in started:
                        started.add(id(stream))
                        stream.write(header)
                    rows, streams[key], counts[key] = [], stream, 0
                    pending[key] = rows
                rows.append(rest)
                held += size
                if held >= BLOCK_BYTES:
                    _write(pending, streams, counts)
                    held = 0
                    if time.monotonic() >= due:
                        on_progress(sum(counts.values()))
                        due = time.monotonic() + REPORT_S
            elif size == 0:  # nothing buffered: wait for the socket, then read what came
                if time.monotonic() >= due:  # a slow source: report meanwhile
                    on_progress(sum(counts.values()))
                    due = time.monotonic() + REPORT_S
                _wait(pg)
            else:  # -1: the copy ended (-2, an error, is in the result read next)
                break
        end_copy(pg, encoding)
        _write(pending, streams, counts)
        on_progress(sum(counts.values()))
        return {_value(key, encoding): n for key, n in counts.items()}
    finally:
        pg.nonblocking = 0


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


def _write(
    pending: dict[bytes, list[bytes]], streams: dict[bytes, BinaryIO], counts: dict[bytes, int]
) -> None:
    """Every key's pending rows to its stream, counted."""
    for key, rows in pending.items():
        if rows:
            streams[key].write(b"".join(rows))
            counts[key] += len(rows)
            rows.clear()


def _wait(pg: Any) -> None:
    select.select([pg.socket], [], [])
    pg.consume_input()


def _name(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("postgres")
