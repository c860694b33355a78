"""Egress's JSONL rendered by PostgreSQL itself: the COPY fast path's SELECT for JSON lines.

Each row becomes one text value, ``{"key":value,…}``, built by the server from the same
per-type text the CSV fast path renders (``columns.py``), so the client only appends blocks
(as for CSV) and ``parallelism`` spreads the rendering over the partitions' backends. The
bytes are exactly the JSONL writer's (``sinks/jsonl.py``: ``json.dumps`` with ``,``/``:``
separators, ``ensure_ascii=False``); ``tests/integration/test_jsonl_copy.py`` compares them.

The lines travel as COPY's CSV with a delimiter and a quote character that JSON text never
holds unescaped (``\\x02``, ``\\x01``), so COPY writes each line as it is."""

from __future__ import annotations

import json

from sqlglot import exp

from egress.domain.catalog import ColumnInfo
from egress.domain.plan import ReadPlan
from egress.query.select import column
from egress.sources.postgresql.columns import (
    arrow_path_sql,
    can_render_csv,
    date_sql,
    timestamp_sql,
)

COPY_OPTIONS = "FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01'"
# The subquery the line is built over (its columns: the plan's fields, by name).
_ROWS = "egress_rows"


def can_render_jsonl(logical: str) -> bool:
    """Types the server renders exactly as the JSONL writer: the CSV fast path's, less JSON
    columns (embedded as values, re-encoded by the writer)."""
    return logical != "json" and can_render_csv(logical)


def _e_string(text: str) -> exp.Expression:
    """A string literal read the same whatever ``standard_conforming_strings`` says."""
    return exp.Var(this="E'" + text.replace("\\", "\\\\").replace("'", "''") + "'")


# What json.dumps escapes (with ensure_ascii=False): '"', '\' and the C0 controls (no NUL in
# PostgreSQL text). Only such values pay for to_json (~0.5 µs a value: it looks up the type).
_NEEDS_ESCAPE = _e_string(r'[\x01-\x1f"\\]')
_QUOTE = exp.Literal.string('"')


def _quoted(text: exp.Expression) -> exp.Expression:
    return exp.DPipe(this=exp.DPipe(this=_QUOTE.copy(), expression=text), expression=_QUOTE.copy())


def _string(text: exp.Expression) -> exp.Expression:
    escape = exp.RegexpLike(this=text.copy(), expression=_NEEDS_ESCAPE.copy())
    to_json = exp.cast(exp.Anonymous(this="to_json", expressions=[text.copy()]), "TEXT")
    return exp.Case(ifs=[exp.If(this=escape, true=to_json)], default=_quoted(text))


def value_sql(field: ColumnInfo) -> exp.Expression:
    """A column's JSON text (NULL for a null). ``field.name`` is a column of the subquery,
    which reads the table's column as the Arrow path does (``arrow_path_sql``)."""
    col = column(field.name)
    if field.type == "boolean":
        return exp.cast(col, "TEXT")  # 'true'/'false'
    if field.type in ("int16", "int32", "int64"):
        return exp.cast(col, "TEXT")
    if field.type in ("timestamp", "timestamptz"):
        # The CSV text's one space becomes ISO 8601's T (replace: ~free; overlay cost ~10 %
        # of a timestamp's rendering).
        text = exp.Anonymous(
            this="replace",
            expressions=[timestamp_sql(field), exp.Literal.string(" "), exp.Literal.string("T")],
        )
        return _quoted(text)
    if field.type == "date":
        return _quoted(date_sql(field))
    if field.type == "string":
        return _string(col)
    return _quoted(col)  # decimals, money and UUIDs as text: digits, hyphens, 'NaN'


def subquery_sql(field: ColumnInfo) -> exp.Expression:
    """What the subquery selects: integers as the Arrow path reads them (oids as BIGINT),
    text types as text; dates and timestamps as they are (``value_sql`` renders them)."""
    if field.type in ("boolean", "date", "timestamp", "timestamptz"):
        return column(field.name)
    return arrow_path_sql(field)


def jsonl_select(rows_select: str, plan: ReadPlan) -> str:
    """One ``{"key":value,…}`` text per row of ``rows_select`` (the plan's SELECT, its
    columns rendered by ``subquery_sql``)."""
    pieces: list[exp.Expression] = []
    glue = "{"
    for field in plan.fields:
        key = json.dumps(field.name, ensure_ascii=False)
        pieces.append(_e_string(f"{glue}{key}:"))
        value = exp.Coalesce(this=value_sql(field), expressions=[exp.Literal.string("null")])
        pieces.append(value)
        glue = ","
    pieces.append(exp.Literal.string("}" if pieces else "{}"))
    line = pieces[0]
    for piece in pieces[1:]:
        line = exp.DPipe(this=line, expression=piece)
    return f"SELECT {line.sql('postgres')} FROM ({rows_select}) AS {_ROWS}"
