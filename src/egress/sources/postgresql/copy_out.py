"""``COPY … TO STDOUT`` read straight from libpq into a file, in blocks.

libpq hands over COPY data one row per call. psycopg's ``Copy`` wraps each call in Python
generators and waits that cost about as much client CPU as the server spends on the whole
COPY; here the rows are read in C (``copy_native``), or, where that was not built, each row
costs one C call and an append in Python. Either loop stays non-blocking (waiting on the
socket between reads, the GIL free) and a cancel that shuts the socket down
(``PostgresSource.interrupt``) ends the wait with an error."""

from __future__ import annotations

import select
from collections.abc import Callable
from typing import Any, BinaryIO, NamedTuple, Protocol

import psycopg
from psycopg import errors, pq

from egress.domain.plan import ReadPlan
from egress.query.select import ColumnSql, plain_column
from egress.sources.arrow_types import arrow_schema
from egress.sources.base import ProgressFn, Rendering, SourceError
from egress.sources.postgresql.columns import copy_sql, csv_header, force_quote, jsonl_copy_sql
from egress.sources.postgresql.copy_native import PYTHON_LAYOUT, float_fields, open_drain
from egress.sources.postgresql.jsonl_copy import JsonlFromCsv

BLOCK_BYTES = 1 << 20
REPORT_S = 0.2


class Blocks(Protocol):
    """Where ``copy_out`` writes its blocks (each a run of whole rows): a file, or a
    converter (``JsonlFromCsv``)."""

    def write(self, block: bytes | bytearray | memoryview, /) -> object: ...


class Copied(NamedTuple):
    rows: int  # the server's count
    last: bytes  # the last row's data, whole (libpq hands over one row at a time); b"" if none


def copy_rendered(
    select: Callable[[ColumnSql], str],
    plan: ReadPlan,
    conn: psycopg.Connection[Any],
    out: BinaryIO,
    on_progress: ProgressFn,
    rendering: Rendering = Rendering.CSV,
    *,
    header: bool = True,
) -> Copied:
    """The plan's rows as ``rendering`` says, a CSV with a header unless told (a parallel
    read's later parts) (``select``: the plan's SELECT with a column rendering)."""
    if rendering is Rendering.JSONL:  # the CSV's text, made JSON lines as it arrives
        lines = JsonlFromCsv(out, arrow_schema(plan.fields))
        statement = (
            f"COPY ({select(jsonl_copy_sql)}) TO STDOUT WITH (FORMAT csv{force_quote(plan)})"
        )
        floats = float_fields(plan, PYTHON_LAYOUT)
        return copy_out(conn, statement, lines, on_progress, floats)._replace(last=lines.last)
    if rendering is Rendering.POSTGRES_CSV:
        column_sql, options = plain_column, ", HEADER" if header else ""
    else:
        column_sql, options = copy_sql, force_quote(plan)
        if header:
            out.write(csv_header([f.name for f in plan.fields]))
    statement = f"COPY ({select(column_sql)}) TO STDOUT WITH (FORMAT csv{options})"
    floats = float_fields(plan) if rendering is Rendering.CSV else []
    return copy_out(conn, statement, out, on_progress, floats)


def refuse_sql_ascii(rendering: Rendering, sql_ascii: bool) -> None:
    if rendering is Rendering.POSTGRES_CSV and sql_ascii:
        raise SourceError(
            "csvDialect 'postgres' cannot read a SQL_ASCII database (its text is bytes"
            " that Egress decodes itself); use the default csvDialect"
        )


def copy_out(
    conn: psycopg.Connection[Any],
    statement: str,
    out: Blocks,
    on_progress: ProgressFn,
    floats: list[int] | None = None,
) -> Copied:
    """Run ``statement`` on ``conn`` and write its data to ``out`` (``floats``: the float
    fields PostgreSQL writes, re-laid out as Arrow writes them: ``copy_native.float_fields``).
    Rows are written and their count reported a block (or, from a slow source, a fraction of
    a second: progress also keeps the stall limit off) at a time. Raises ``psycopg.Error``."""
    pg = conn.pgconn
    encoding = conn.info.encoding
    pg.send_query(statement.encode(encoding))
    pg.nonblocking = 1
    try:
        expect_status(pg, next_result(pg), pq.ExecStatus.COPY_OUT, encoding)
        drain = open_drain(pg, BLOCK_BYTES, floats=floats or [])
        for chunk in drain.chunks(REPORT_S):
            out.write(chunk.data)
            on_progress(drain.rows)
        rest = drain.rest().data
        done = end_copy(pg, encoding)
        out.write(rest)
        on_progress(drain.rows)
        assert done is not None
        return Copied(int(done.command_tuples or 0), drain.last)
    finally:
        pg.nonblocking = 0


def end_copy(pg: Any, encoding: str) -> Any:
    """The COPY's closing result, once the connection is idle again; raises the server's
    error if the COPY failed."""
    done = next_result(pg)
    while next_result(pg) is not None:  # the connection goes back idle
        pass
    expect_status(pg, done, pq.ExecStatus.COMMAND_OK, encoding)
    return done


def next_result(pg: Any) -> Any:
    """libpq's next result, waiting on the socket (not holding the GIL) until it is whole."""
    while pg.is_busy():
        select.select([pg.socket], [], [])
        pg.consume_input()
    return pg.get_result()


def expect_status(pg: Any, result: Any, status: pq.ExecStatus, encoding: str) -> None:
    if result is not None and result.status == status:
        return
    if result is None:
        raise psycopg.OperationalError(pg.get_error_message(encoding))
    while next_result(pg) is not None:
        pass
    raise errors.error_from_result(result, encoding=encoding)
