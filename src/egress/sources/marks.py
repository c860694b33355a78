"""An incremental run's mark as the databases read it: the cursor's maximum, and in the same
statement how many records have no cursor value at all (README "Run options": a NULL cursor
is never past a watermark, so incremental runs never take those records, and say so).

The maximum is ``max_statement``'s (no filters: the window is on the cursor), widened by
``exact`` where the driver's reading of the column's own type is not exact (PostgreSQL's
``real``: ``keyset.exact_number``; MySQL's ``FLOAT``: ``columns.max_sql``).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlglot.expressions as exp

from egress.domain.plan import ReadPlan
from egress.query.select import column, relation, temporal_fields
from egress.query.where import Comparisons


def _itself(node: exp.Expr) -> exp.Expr:
    return node


def may_be_null(plan: ReadPlan, field: str) -> bool:
    """Whether the source may hold a NULL in ``field`` (unknown: it may)."""
    found = next((c for c in plan.columns or plan.fields if c.name == field), None)
    return found is None or found.nullable


def mark_statement(
    plan: ReadPlan,
    field: str,
    dialect: str,
    rules: Comparisons = Comparisons(),
    exact: Callable[[exp.Expr], exp.Expr] = _itself,
) -> str:
    """``SELECT <maximum>, <records whose cursor is NULL>`` (columns ``high`` and ``nulls``).

    On a table each is its own scalar subquery, so an index on the cursor still answers both
    (MAX from its end, IS NULL from its NULL entries) instead of one scan for the pair; a
    column declared NOT NULL is not counted. A SQL template's query is run once for both."""
    raw = column(field)
    ordered = rules.instant(raw.copy()) if field in temporal_fields(plan) else raw.copy()
    nullable = may_be_null(plan, field)
    if plan.query is not None:
        counted: exp.Expr = exp.Sub(
            this=exp.Count(this=exp.Star()), expression=exp.Count(this=raw.copy())
        )
        return (
            exp.select(
                exp.alias_(exact(exp.Max(this=ordered)), "high"),
                exp.alias_(counted if nullable else exp.Literal.number(0), "nulls"),
            )
            .from_(relation(plan, dialect))
            .sql(dialect=dialect)
        )
    highest = exp.select(exp.Max(this=ordered)).from_(relation(plan, dialect))
    nulls: exp.Expr = exp.Literal.number(0)
    if nullable:
        nulls = exp.Subquery(
            this=exp.select(exp.Count(this=exp.Star()))
            .from_(relation(plan, dialect))
            .where(exp.Is(this=raw.copy(), expression=exp.Null()))
        )
    return exp.select(
        exp.alias_(exact(exp.Subquery(this=highest)), "high"), exp.alias_(nulls, "nulls")
    ).sql(dialect=dialect)
