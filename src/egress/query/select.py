"""Plan → SELECT statement in a source's dialect: a sqlglot tree rendered once, every value
placed in it as a parameter node.

How a value reaches the driver is the driver's own mechanism, chosen by the source, and
finished SQL text is never passed through ``%``- or name-based substitution (DESIGN §11):

- bound at the protocol level: ``:p0``… placeholders and a dict of values (sqlite3), or
- rendered in its place in the tree by the driver's own quoting, for drivers that cannot bind
  it: PostgreSQL's COPY takes no parameters and ADBC binds only typed ones (``date > text``
  fails), and PyMySQL's "parameters" are ``%``-formatting of the whole text.

A ``%``, ``%(p0)s``, ``:p0`` or ``?`` inside a literal or a quoted identifier is therefore
never read as a placeholder.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlglot import exp

from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.options import Window, naive_utc
from egress.domain.plan import KeyRange, ReadPlan
from egress.query.custom import ALIAS, subquery
from egress.query.where import Comparisons, bind_where, parse_where

ColumnSql = Callable[[ColumnInfo], exp.Expr]

# Logical types compared as instants (``Comparisons``): SQLite holds them as text or numbers.
TEMPORAL = frozenset({"date", "timestamp", "timestamptz"})


# A driver's quoting of one value as a SQL literal (psycopg's ``sql.Literal``, PyMySQL's
# ``escape``).
Quote = Callable[[Any], str]


@dataclass
class Params:
    """The values of one statement. Without ``quote``: named placeholders (``p0``, ``p1``…)
    bound by the driver. With it: each value becomes its driver-quoted literal, a leaf of the
    tree, and ``values`` stays empty."""

    values: dict[str, Any] = field(default_factory=dict)
    convert: Callable[[Any], Any] = lambda v: v
    quote: Quote | None = None

    def bind(self, value: Any) -> exp.Expr:
        value = self.convert(value)
        if self.quote is not None:
            # A Var renders its text as it is: the driver's literal, never re-read for markers.
            return exp.Paren(this=exp.Var(this=self.quote(value)))
        name = f"p{len(self.values)}"
        self.values[name] = value
        return exp.Placeholder(this=name)


@dataclass(frozen=True)
class Statement:
    sql: str
    params: dict[str, Any]  # empty when the values were quoted into the tree


def column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def plain_column(field: ColumnInfo) -> exp.Expr:
    return column(field.name)


def relation(plan: ReadPlan, dialect: str) -> exp.Table | exp.Subquery:
    """What the plan reads: its table, or a SQL template's query as ``(<query>) AS "q"``,
    so every filter, window and key selection wraps the query the same way."""
    if plan.query is not None:
        return subquery(plan.query, dialect)
    assert plan.table is not None, "a plan reads a table or a query"
    return table_sql(plan.table)


def table_sql(table: TableRef) -> exp.Table:
    """A table by its parts, each a quoted identifier: dots and quotes stay inside the part."""
    return exp.table_(table.name, db=table.schema, quoted=True)


def sqlite_value(value: Any) -> Any:
    """A value as SQLite compares it: a date as ISO text (UTC) where the column is not read as
    a date (a text ``dateField``); a Decimal (a literal such as ``1.5``) as a REAL. As text it
    compared as text with an expression without affinity (``abs(a) > '1.5'``); a DECIMAL
    column's NUMERIC affinity turns text into the same REAL (or INTEGER) anyway, so no
    exactness is lost: SQLite's decimals are those numbers."""
    if isinstance(value, datetime):
        return naive_utc(value).isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def temporal_fields(plan: ReadPlan) -> frozenset[str]:
    """The plan's date and time columns: compared as instants (``Comparisons``)."""
    return frozenset(c.name for c in plan.columns or plan.fields if c.type in TEMPORAL)


@dataclass(frozen=True)
class _Operands:
    """A plan's columns and values as its source compares them: a date or time column's by
    ``rules`` (SQLite: as instants), every value bound in ``params``."""

    params: Params
    rules: Comparisons
    temporal: frozenset[str]

    def column(self, name: str) -> exp.Expr:
        col = column(name)
        return self.rules.instant(col) if name in self.temporal else col

    def value(self, name: str, value: Any) -> exp.Expr:
        if name in self.temporal:
            value = self.rules.instant_value(value)
        return self.params.bind(value)


def conditions(
    plan: ReadPlan, params: Params, rules: Comparisons = Comparisons()
) -> list[exp.Expr]:
    sides = _Operands(params, rules, temporal_fields(plan))
    out: list[exp.Expr] = []
    if plan.dates is not None:
        name = plan.dates.field
        if plan.dates.start is not None:
            start = sides.value(name, plan.dates.start.value)
            out.append(exp.GTE(this=sides.column(name), expression=start))
        if plan.dates.end is not None:
            op = exp.LTE if plan.dates.end.inclusive else exp.LT
            out.append(
                op(this=sides.column(name), expression=sides.value(name, plan.dates.end.value))
            )
    if plan.window is not None:
        out.extend(_window(plan.window, sides))
    if plan.where:
        tree = parse_where(plan.where, plan.columns or plan.fields)
        out.append(exp.Paren(this=bind_where(tree, params.bind, sides.temporal, rules)))
    if plan.keys is not None:
        out.append(_key_match(plan.keys.fields, plan.keys.values, sides))
    if plan.after is not None:
        out.append(_after(plan.order, plan.after, params))
    if plan.key_range is not None:
        out.extend(_in_range(plan.key_range, params))
    return out


def _in_range(key_range: KeyRange, params: Params) -> list[exp.Expr]:
    col = column(key_range.field)
    out: list[exp.Expr] = []
    if key_range.low is not None:
        out.append(exp.GTE(this=col.copy(), expression=params.bind(key_range.low)))
    if key_range.high is not None:
        below: exp.Expr = exp.LT(this=col.copy(), expression=params.bind(key_range.high))
        if key_range.nulls:
            below = exp.Paren(this=exp.or_(below, exp.Is(this=col.copy(), expression=exp.Null())))
        out.append(below)
    return out


def _input_column(plan: ReadPlan, name: str) -> exp.Column:
    """The relation's own column, qualified: in ORDER BY a bare name would mean the output
    column of that name, which a source may have rendered as text (PostgreSQL's COPY path)."""
    if plan.query is not None:
        return exp.column(name, table=ALIAS, quoted=True)
    assert plan.table is not None
    return exp.column(name, table=plan.table.name, db=plan.table.schema, quoted=True)


def _after(order: list[str], after: list[Any], params: Params) -> exp.Expr:
    """Rows whose key comes after ``after`` in key order: a row-value comparison, which
    PostgreSQL, MySQL and SQLite all evaluate (and PostgreSQL reads as an index range)."""
    if len(order) == 1:
        return exp.GT(this=column(order[0]), expression=params.bind(after[0]))
    return exp.GT(
        this=exp.Tuple(expressions=[column(k) for k in order]),
        expression=exp.Tuple(expressions=[params.bind(v) for v in after]),
    )


def _window(window: Window, sides: _Operands) -> list[exp.Expr]:
    """(low, high] on the cursor; on PostgreSQL snapshot windows also the rows at or below low
    that committed after the previous run's snapshot, and only rows its own snapshot saw."""
    name, params = window.field, sides.params
    out: list[exp.Expr] = []
    if window.low is not None:
        out.append(exp.GT(this=sides.column(name), expression=sides.value(name, window.low)))
    out.append(exp.LTE(this=sides.column(name), expression=sides.value(name, window.high)))
    if window.after is not None and window.low is not None:
        late = exp.and_(
            exp.LTE(this=sides.column(name), expression=sides.value(name, window.low)),
            exp.Not(this=_visible_in(window.after, params)),
        )
        out = [exp.Paren(this=exp.or_(exp.Paren(this=exp.and_(*out)), exp.Paren(this=late)))]
    if window.within is not None:
        out.append(_visible_in(window.within, params))
    return out


# xmin is 32 bits and wraps; pg_snapshot holds 64-bit ids (xid8, with the epoch). A live row's
# xmin lies within 2^31 of the current snapshot's xmax, so the nearest 64-bit id with the same
# low 32 bits is its full id.
_HALF = 2**31
_LOW32 = 2**32 - 1


def _as_bigint(value: exp.Expr) -> exp.Expr:
    return exp.cast(exp.cast(value, "TEXT"), "BIGINT")


def full_xmin() -> exp.Expr:
    """The row's ``xmin`` widened to ``xid8`` (PostgreSQL has no cast from xid)."""
    reference = _as_bigint(
        exp.Anonymous(
            this="pg_snapshot_xmax",
            expressions=[exp.Anonymous(this="pg_current_snapshot", expressions=[])],
        )
    )
    offset = exp.Paren(
        this=exp.BitwiseAnd(
            this=exp.Paren(
                this=exp.Add(
                    this=exp.Sub(this=_as_bigint(column("xmin")), expression=reference.copy()),
                    expression=exp.Literal.number(_HALF),
                )
            ),
            expression=exp.Literal.number(_LOW32),
        )
    )
    full = exp.Sub(
        this=exp.Add(this=reference, expression=offset), expression=exp.Literal.number(_HALF)
    )
    return exp.cast(exp.cast(exp.Paren(this=full), "TEXT"), exp.DataType.build("xid8", udt=True))


def _visible_in(snapshot: str, params: Params) -> exp.Expr:
    return exp.Anonymous(
        this="pg_visible_in_snapshot",
        expressions=[
            full_xmin(),
            exp.cast(params.bind(snapshot), exp.DataType.build("pg_snapshot", udt=True)),
        ],
    )


def _key_match(fields: list[str], values: list[list[Any]], sides: _Operands) -> exp.Expr:
    if len(fields) == 1:
        (name,) = fields
        keys = [sides.value(name, v[0]) for v in values]
        return exp.In(this=sides.column(name), expressions=keys)
    rows = [
        exp.and_(
            *[
                exp.EQ(this=sides.column(f), expression=sides.value(f, v))
                for f, v in zip(fields, row, strict=True)
            ]
        )
        for row in values
    ]
    return exp.Paren(this=exp.or_(*rows))


def select_statement(
    plan: ReadPlan,
    dialect: str,
    column_sql: ColumnSql = plain_column,
    convert: Callable[[Any], Any] | None = None,
    quote: Quote | None = None,
    rules: Comparisons = Comparisons(),
) -> Statement:
    """The plan's SELECT; values bound by name, or quoted in place when ``quote`` is given;
    date and time columns compared as ``rules`` says."""
    params = Params(convert=convert or (lambda v: v), quote=quote)
    projections = [
        exp.alias_(exp.Var(this=_column_text(column_sql, f, dialect)), f.name, quoted=True)
        for f in plan.fields
    ]
    # The tree is this call's own: the builders need not copy it at each step.
    query = exp.select(*projections).from_(relation(plan, dialect), copy=False)
    where = conditions(plan, params, rules)
    if where:
        query = query.where(exp.and_(*where), copy=False)
    if plan.order:
        query = query.order_by(*[_input_column(plan, k) for k in plan.order], copy=False)
    if plan.limit is not None:
        query = query.limit(plan.limit, copy=False)
    if plan.offset is not None:
        query = query.offset(plan.offset, copy=False)
    return Statement(query.sql(dialect=dialect), params.values)


# ``quoted_select``'s texts: (the plan's repr, dialect, column rendering) → SELECT.
_TEXTS: dict[tuple[str, str, ColumnSql], str] = {}
_TEXTS_MAX = 256
_texts_lock = threading.Lock()


def quoted_select(plan: ReadPlan, dialect: str, column_sql: ColumnSql, quote: Quote) -> str:
    """``select_statement``'s text with every value quoted in place by ``quote``. A plan whose
    SELECT quotes no value is rendered once and its text kept: every run of a configuration
    reads the same plan, and sqlglot's building and rendering of it, twice a run (the row
    estimate's and the read's), was a tenth of a tiny run's CPU (issue 19). A text that
    quoted a value depends on the session's quoting, so it is never kept. The plan's repr
    holds every field it is built from (a plan that cannot say so misses, never mismatches)."""
    key = (repr(plan), dialect, column_sql)
    with _texts_lock:
        text = _TEXTS.get(key)
    if text is not None:
        return text
    quoted = False

    def quoting(value: Any) -> str:
        nonlocal quoted
        quoted = True
        return quote(value)

    text = select_statement(plan, dialect, column_sql, quote=quoting).sql
    if not quoted:
        with _texts_lock:
            if len(_TEXTS) >= _TEXTS_MAX:
                del _TEXTS[next(iter(_TEXTS))]  # the oldest
            _TEXTS[key] = text
    return text


@lru_cache(maxsize=4096)
def _column_text(column_sql: ColumnSql, field: ColumnInfo, dialect: str) -> str:
    """A column's rendered expression (a Var in the tree renders its text as it is): every
    job of a chain selects the same columns, and building their sqlglot trees (the COPY
    path's timestamp CASEs) cost more than a small job's query itself. ``column_sql`` is a
    pure function of the column."""
    return column_sql(field).sql(dialect=dialect)


def max_statement(
    plan: ReadPlan, field_name: str, dialect: str, rules: Comparisons = Comparisons()
) -> str:
    """The high-water mark of the cursor field (no filters: the window is on the cursor), the
    greatest in the order the window compares the cursor in (``rules``)."""
    sides = _Operands(Params(), rules, temporal_fields(plan))
    return (
        exp.select(exp.Max(this=sides.column(field_name)))
        .from_(relation(plan, dialect))
        .sql(dialect=dialect)
    )


def later_statement(
    plan: ReadPlan, field_name: str, value: Any, current: Any, dialect: str, params: Params
) -> str:
    """Whether the source orders ``value`` after ``current`` in the cursor column's own
    collation: 1 when it does, 2 when not (equal there included). The two values are rows of
    a UNION under an empty SELECT of the column, whose collation (and type) the union's column
    takes on PostgreSQL, MySQL and SQLite alike; a case-insensitive or linguistic order (MySQL's
    defaults, ``en_US``) is not Python's code-point order."""
    empty = (
        exp.select(exp.alias_(column(field_name), "v"), exp.alias_(exp.Literal.number(0), "n"))
        .from_(relation(plan, dialect))
        .where(exp.false())
    )
    rows = [
        exp.select(exp.alias_(params.bind(v), "v"), exp.alias_(exp.Literal.number(n), "n"))
        for n, v in ((1, value), (2, current))
    ]
    both = exp.union(exp.union(empty, rows[0], distinct=False), rows[1], distinct=False)
    return (
        exp.select("n")
        .from_(both.subquery("x"))
        .order_by(exp.Ordered(this=exp.column("v"), desc=True))
        .order_by(exp.Ordered(this=exp.column("n"), desc=True), append=True)
        .limit(1)
        .sql(dialect=dialect)
    )


def bounds_statement(plan: ReadPlan, key: str, dialect: str, quote: Quote | None = None) -> str:
    """The smallest and largest ``key`` among the plan's rows (its filters applied): what a
    parallel read cuts into ranges."""
    params = Params(quote=quote)
    col = column(key)
    query = exp.select(exp.Min(this=col.copy()), exp.Max(this=col)).from_(relation(plan, dialect))
    where = conditions(plan, params)
    if where:
        query = query.where(exp.and_(*where))
    return query.sql(dialect=dialect)


def columns_read(plan: ReadPlan, cursor_field: str | None = None) -> list[str]:
    """Every column a run of ``plan`` names in SQL: its fields, then those its date range,
    ``cursor_field`` (an incremental run), selected rows and whereClause filter on."""
    names = [f.name for f in plan.fields]
    if plan.dates is not None:
        names.append(plan.dates.field)
    if cursor_field is not None:
        names.append(cursor_field)
    if plan.keys is not None:
        names.extend(plan.keys.fields)
    if plan.where:
        tree = parse_where(plan.where, plan.columns or plan.fields)
        names.extend(col.name for col in tree.find_all(exp.Column))
    return list(dict.fromkeys(names))


def star_query(table: TableRef, dialect: str) -> str:
    """``SELECT * FROM <table>``: what a source describes to list a table's columns now."""
    return exp.select("*").from_(table_sql(table)).sql(dialect=dialect)
