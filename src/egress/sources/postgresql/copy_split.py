"""A split run's CSV through one ``COPY``: every row led by its split key, each routed to its
part's file as it arrives (issue 19: a split CSV took the Arrow path, 1.35 times the COPY path).

libpq hands COPY data over one row per call, so a row's bounds are exact whatever its fields
hold (quoted newlines included). The key column leads every row in a form CSV never quotes —
the digits or ``true``/``false`` the row itself holds, or a ``v`` and the hex of the text's
UTF-8 — so the first comma ends it, and an empty key is NULL. The rest of the row is exactly
the unsplit COPY's row. The key's text is the value the Arrow path's router sees (the same
rendering of the column), so parts, ids and names are the same on both paths."""

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
from egress.sources.postgresql.copy_out import REPORT_S, _expect, _result

# Split fields whose key is the column's own text as COPY writes it (never quoted).
PLAIN_KEYS = {"int16", "int32", "int64", "boolean"}
# Split fields whose key is the hex of their text (which CSV may quote).
HEX_KEYS = {"string", "json", "uuid"}
# Bytes gathered per part before they go to its file: a split may have up to
# EGRESS_MAX_SPLIT_PARTS parts open, so each holds little.
PART_BLOCK_BYTES = 64 << 10
KEY_ALIAS = "egress split key"

# The stream a part's rows go to, given the split value's text (None: NULL); the same stream
# for two values means one file (values whose ids coincide).
OpenPart = Callable[[str | None], BinaryIO]


def can_copy_split(field: ColumnInfo) -> bool:
    return field.type in PLAIN_KEYS or field.type in HEX_KEYS


def split_field(plan: ReadPlan, split_by: str) -> ColumnInfo:
    return next(f for f in plan.fields if f.name == split_by)


def split_statement(
    select_sql: Callable[[ColumnSql], str], plan: ReadPlan, output: list[str], split_by: str
) -> str:
    """The COPY of ``plan``'s rows as Egress's CSV of the ``output`` columns, each led by the
    key of ``split_by`` (``plan`` reads it even when the files leave it out)."""
    field = split_field(plan, split_by)
    rendered = f"q.{_name(split_by)}"  # what copy_sql made of it: the Arrow path's text
    if field.type in HEX_KEYS:
        key = f"'v' || encode(convert_to({rendered}, 'UTF8'), 'hex')"
    else:
        key = rendered
    columns = ", ".join(f"q.{_name(n)}" for n in output)
    query = f"SELECT {key} AS {_name(KEY_ALIAS)}, {columns} FROM ({select_sql(copy_sql)}) AS q"
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
    hexed = split_field(plan, split_by).type in HEX_KEYS
    pg = conn.pgconn
    encoding = conn.info.encoding
    header = csv_header(output)
    pg.send_query(statement.encode(encoding))
    pg.nonblocking = 1
    try:
        _expect(pg, _result(pg), pq.ExecStatus.COPY_OUT, encoding)
        blocks: dict[bytes, bytearray] = {}
        counts: dict[bytes, int] = {}
        streams: dict[bytes, BinaryIO] = {}
        started: set[int] = set()  # the streams that have their header
        due = time.monotonic() + REPORT_S
        get = pg.get_copy_data
        # Per row only what must be: split off the key, append, count.
        while True:
            size, data = get(1)
            if size > 0:
                key, rest = bytes(data).split(b",", 1)  # libpq lends a view
                block = blocks.get(key)
                if block is None:
                    stream = open_part(_value(key, hexed))
                    if id(stream) not in started:
                        started.add(id(stream))
                        stream.write(header)
                    streams[key], block, counts[key] = stream, bytearray(), 0
                    blocks[key] = block
                block += rest
                counts[key] += 1
                if len(block) >= PART_BLOCK_BYTES:
                    streams[key].write(block)
                    block.clear()
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
        done = _result(pg)
        while _result(pg) is not None:  # the connection goes back idle
            pass
        _expect(pg, done, pq.ExecStatus.COMMAND_OK, encoding)
        for key, block in blocks.items():
            streams[key].write(block)
        on_progress(sum(counts.values()))
        return {_value(key, hexed): n for key, n in counts.items()}
    finally:
        pg.nonblocking = 0


def _wait(pg: Any) -> None:
    select.select([pg.socket], [], [])
    pg.consume_input()


def _value(key: bytes, hexed: bool) -> str | None:
    """The split value's text from its key (the text the Arrow path's router canonicalises)."""
    if not key:
        return None
    if hexed:
        return bytes.fromhex(key[1:].decode("ascii")).decode("utf-8")
    return key.decode("ascii")


def _name(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("postgres")
