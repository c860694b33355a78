"""Where an export job's COPY of a keyset slice ends: the next cursor and whether rows remain.

When the key columns are written as text that is their cursor value (integers, and what the
COPY casts to text as the Arrow path does), the next cursor is parsed from the COPY's last row,
which libpq hands over whole, and one index probe after the COPY, in its snapshot, tells
whether any row follows. Other keys are found before the COPY, in the same snapshot, by a
bound query over the key (``OFFSET limit - 1``), which walks the slice's index entries once
more."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import psycopg
from sqlglot import exp

from egress.domain.catalog import ColumnInfo
from egress.domain.plan import ReadPlan
from egress.query.select import ColumnSql, column, plain_column
from egress.sources.base import Rendering
from egress.sources.postgresql.columns import arrow_path_sql, is_text
from egress.sources.postgresql.copy_out import Copied
from egress.sources.postgresql.snapshot import BEGIN_SNAPSHOT, one_row

INTEGERS = {"int16", "int32", "int64"}


def key_in_rows(plan: ReadPlan) -> bool:
    """Whether the written CSV holds every key column as its exact cursor value."""
    types = {f.name: f.type for f in plan.fields}
    return all(types.get(k) in INTEGERS or is_text(types.get(k, "")) for k in plan.order)


def row_key(row: bytes, encoding: str, plan: ReadPlan, rendering: Rendering) -> list[Any]:
    """The key of one CSV row (or JSON line) of the plan's fields (a key column is never
    null)."""
    if rendering is Rendering.JSONL:  # integers are JSON numbers, text keys JSON strings
        line = json.loads(row.decode(encoding))
        return [line[k] for k in plan.order]
    values = next(csv.reader(io.StringIO(row.decode(encoding), newline="")))
    at = {f.name: (i, f.type in INTEGERS) for i, f in enumerate(plan.fields)}
    return [int(values[at[k][0]]) if at[k][1] else values[at[k][0]] for k in plan.order]


def key_sql(field: ColumnInfo) -> exp.Expr:
    """A key column as the bound query reads it, each value exactly: a text key as the COPY
    writes it (psycopg would read an inet as an address object, a jsonb as a dict, and an
    interval in ISO 8601 not at all), a real widened to double precision (psycopg reads a
    real's shortest text, 0.3, as the double 0.3, below the stored 0.30000001192092896: the
    next job's ``k > 0.3`` took the boundary row again)."""
    if is_text(field.type):
        return arrow_path_sql(field)
    if field.type == "float32":
        return exact_number(column(field.name), field.type)
    return plain_column(field)


def exact_number(node: exp.Expr, logical: str) -> exp.Expr:
    """A number as psycopg and ADBC read it exactly: a real (float4) widened to double
    precision, whose text is the stored single exactly (psycopg reads a real's shortest text,
    0.2, as the double 0.2, below the stored 0.20000000298023224): a key (``key_sql``) and an
    incremental run's mark (``PostgresSource.max_value``, ``begin_snapshot``) alike. Without it
    the window's ``c <= 0.2`` left out the row holding the maximum until a later insert."""
    return exp.cast(node, "DOUBLE PRECISION") if logical == "float32" else node


def key_plan(plan: ReadPlan, **changes: Any) -> ReadPlan:
    """The plan reading only its key columns."""
    by_name = {c.name: c for c in plan.columns or plan.fields}
    return replace(plan, fields=[by_name[k] for k in plan.order], **changes)


def copy_slice(
    conn: psycopg.Connection[Any],
    plan: ReadPlan,
    select: Callable[[ReadPlan, ColumnSql], str],
    copy: Callable[[], Copied],
    rendering: Rendering,
) -> tuple[int, list[Any] | None, bool]:
    """On ``conn``, in one snapshot: ``copy`` of the plan's slice, its row count, its last
    key when the slice is full (None: fewer rows remained) and whether any row follows."""
    assert plan.limit is not None and plan.order
    one_row(conn, BEGIN_SNAPSHOT)
    if not key_in_rows(plan):
        bound = key_plan(plan, limit=2, offset=plan.limit - 1)
        found = conn.execute(select(bound, key_sql)).fetchall()
        return copy().rows, (list(found[0]) if found else None), len(found) == 2
    rows, tail = copy()
    if rows < plan.limit:
        return rows, None, False
    last = row_key(tail, conn.info.encoding, plan, rendering)
    # Whether, not which: the key's values are not read back (nor parsed by psycopg).
    next_row = select(key_plan(plan, after=last, limit=1), plain_column)
    follows = one_row(conn, f"SELECT EXISTS ({next_row})")
    return rows, last, bool(follows[0])
