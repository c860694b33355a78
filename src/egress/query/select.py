"""Plan → SELECT statement in a source's dialect, with every value as a named parameter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlglot import exp

from egress.domain.catalog import ColumnInfo
from egress.domain.options import Window, naive_utc
from egress.domain.plan import ReadPlan
from egress.query.custom import subquery
from egress.query.where import bind_where, parse_where

ColumnSql = Callable[[ColumnInfo], exp.Expr]


@dataclass
class Params:
    """Named parameters (``p0``, ``p1``…); the dialect renders the placeholders."""

    values: dict[str, Any] = field(default_factory=dict)
    convert: Callable[[Any], Any] = lambda v: v

    def bind(self, value: Any) -> exp.Placeholder:
        name = f"p{len(self.values)}"
        self.values[name] = self.convert(value)
        return exp.Placeholder(this=name)


@dataclass(frozen=True)
class Statement:
    sql: str
    params: dict[str, Any]


def column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def plain_column(field: ColumnInfo) -> exp.Expr:
    return column(field.name)


def relation(plan: ReadPlan, dialect: str) -> exp.Table | exp.Subquery:
    """What the plan reads: its table, or a SQL template's query as ``(<query>) AS "q"``,
    so every filter, window and key selection wraps the query the same way."""
    if plan.query is not None:
        return subquery(plan.query, dialect)
    return exp.table_(plan.table_name, db=plan.schema_name, quoted=True)


def sqlite_value(value: Any) -> Any:
    """SQLite keeps dates as ISO text (UTC): compare with the same text form."""
    if isinstance(value, datetime):
        return naive_utc(value).isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def conditions(plan: ReadPlan, params: Params) -> list[exp.Expr]:
    out: list[exp.Expr] = []
    if plan.dates is not None:
        col = column(plan.dates.field)
        if plan.dates.start is not None:
            out.append(exp.GTE(this=col.copy(), expression=params.bind(plan.dates.start.value)))
        if plan.dates.end is not None:
            op = exp.LTE if plan.dates.end.inclusive else exp.LT
            out.append(op(this=col.copy(), expression=params.bind(plan.dates.end.value)))
    if plan.window is not None:
        out.extend(_window(plan.window, params))
    if plan.where:
        tree = parse_where(plan.where, [c.name for c in plan.columns or plan.fields])
        out.append(exp.Paren(this=bind_where(tree, params.bind)))
    if plan.keys is not None:
        out.append(_key_match(plan.keys.fields, plan.keys.values, params))
    return out


def _window(window: Window, params: Params) -> list[exp.Expr]:
    """(low, high] on the cursor; on PostgreSQL snapshot windows also the rows at or below low
    that committed after the previous run's snapshot, and only rows its own snapshot saw."""
    col = column(window.field)
    out: list[exp.Expr] = []
    if window.low is not None:
        out.append(exp.GT(this=col.copy(), expression=params.bind(window.low)))
    out.append(exp.LTE(this=col.copy(), expression=params.bind(window.high)))
    if window.after is not None and window.low is not None:
        late = exp.and_(
            exp.LTE(this=col.copy(), expression=params.bind(window.low)),
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


def _key_match(fields: list[str], values: list[list[Any]], params: Params) -> exp.Expr:
    if len(fields) == 1:
        return exp.In(this=column(fields[0]), expressions=[params.bind(v[0]) for v in values])
    rows = [
        exp.and_(
            *[
                exp.EQ(this=column(f), expression=params.bind(v))
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
) -> Statement:
    params = Params(convert=convert or (lambda v: v))
    projections = [exp.alias_(column_sql(f), f.name, quoted=True) for f in plan.fields]
    query = exp.select(*projections).from_(relation(plan, dialect))
    where = conditions(plan, params)
    if where:
        query = query.where(exp.and_(*where))
    return Statement(query.sql(dialect=dialect), params.values)


def max_statement(plan: ReadPlan, field_name: str, dialect: str) -> str:
    """The high-water mark of the cursor field (no filters: the window is on the cursor)."""
    return (
        exp.select(exp.Max(this=column(field_name)))
        .from_(relation(plan, dialect))
        .sql(dialect=dialect)
    )
