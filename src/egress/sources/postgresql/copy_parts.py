"""A parallel read's CSV or JSONL as one ``COPY`` per key range, each in a session of its own,
all in the first session's exported snapshot (as ``read_partitions`` does for the Arrow path).

Each part is what the single ``COPY`` writes for its range (the first with a CSV header): the
parts concatenated in key order are the single stream's bytes, rows in key-range order. The
server renders each range in a backend of its own and the client only appends blocks, so two
ranges use two cores where one ``COPY`` used about one (bench/README.md, issue 19)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any, BinaryIO

import psycopg

from egress.domain.plan import ReadPlan
from egress.query.select import ColumnSql, Quote, bounds_statement
from egress.sources.base import FilePart, ProgressFn, Rendering
from egress.sources.postgresql.batches import read_error
from egress.sources.postgresql.copy_out import copy_rendered
from egress.sources.postgresql.snapshot import BEGIN_SNAPSHOT, NO_GATHER, join_snapshot, one_row

Conn = psycopg.Connection[Any]
Select = Callable[[Conn, ReadPlan, ColumnSql], str]


def copy_parts(
    first: Conn,
    connect: Callable[[], Conn],
    plan: ReadPlan,
    select: Select,
    quoter: Callable[[Conn], Quote],
    rendering: Rendering,
) -> list[FilePart]:
    """The parts of ``plan``'s file. ``first``: the session whose snapshot the others share
    (an incremental run's, already in its snapshot transaction, or an idle one); the parts own
    every session from here on (each closes its own)."""
    sessions = [first]
    try:
        quote = quoter(first)
        if first.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            one_row(first, BEGIN_SNAPSHOT)
        key = plan.partition_key
        assert key is not None  # partition_blocker let only a keyed plan through
        bounds = bounds_statement(plan, key, "postgres", quote)
        one_row(first, NO_GATHER)
        exported, low, high = one_row(
            first, f"SELECT pg_export_snapshot(), b.* FROM ({bounds}) AS b"
        )
        ranges = [None] if low is None else plan.key_ranges(low, high)
        parts = [replace(plan, key_range=r, parallelism=1) for r in ranges]
        for _ in parts[1:]:
            sessions.append(connect())
            join_snapshot(sessions[-1], quote(exported))
    except BaseException as exc:
        for conn in sessions:
            conn.close()
        if isinstance(exc, psycopg.Error):
            raise read_error(exc) from exc
        raise
    return [
        FilePart(partial(_copy, conn, part, select, rendering), conn.close)
        for conn, part in zip(sessions, parts, strict=True)
    ]


def _copy(
    conn: Conn,
    plan: ReadPlan,
    select: Select,
    rendering: Rendering,
    out: BinaryIO,
    first: bool,
    on_progress: ProgressFn,
) -> int:
    try:
        part_select = partial(select, conn, plan)
        copied = copy_rendered(part_select, plan, conn, out, on_progress, rendering, header=first)
        return copied.rows
    except psycopg.Error as exc:
        raise read_error(exc) from exc
