"""Structured filter conditions (``{field, operator, value}``, AND-ed) compiled into the
whereClause grammar.

The conditions are built as a sqlglot tree — a value only ever becomes a literal node, which
sqlglot quotes — rendered as whereClause text, and that text is checked by ``parse_where``
like any client's whereClause: one grammar, one set of checks, and the runs read the filter
exactly as they read a typed one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from egress.domain.catalog import ColumnInfo
from egress.domain.errors import Invalid
from egress.query.where import parse_where

LOC = ("body", "filters")
MAX_CONDITIONS = 100
MAX_IN_VALUES = 1000

COMPARISONS: dict[str, type[exp.Binary]] = {
    "=": exp.EQ,
    "!=": exp.NEQ,
    ">": exp.GT,
    ">=": exp.GTE,
    "<": exp.LT,
    "<=": exp.LTE,
}
OPERATORS = (*COMPARISONS, "in", "not_in", "contains", "is_null", "is_not_null")
# A LIKE pattern's wildcards and escape: SQLite has no default LIKE escape character, so a
# ``contains`` value holding one could not be matched literally on every source alike.
_LIKE_SPECIALS = ("%", "_", "\\")


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: Any = None


def _literal(value: Any, loc: tuple[str | int, ...]) -> exp.Expr:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return exp.Literal.number(value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    raise Invalid.at(loc, "must be a string, a finite number or a boolean")


def _condition(c: Condition, loc: tuple[str | int, ...]) -> exp.Expr:
    column = exp.column(c.field, quoted=True)
    value_loc = (*loc, "value")
    if c.operator in ("is_null", "is_not_null"):
        if c.value is not None:
            raise Invalid.at(value_loc, f"{c.operator} takes no value")
        tree: exp.Expr = exp.Is(this=column, expression=exp.Null())
        return exp.Not(this=tree) if c.operator == "is_not_null" else tree
    if c.value is None:
        raise Invalid.at(value_loc, f"{c.operator} needs a value; use is_null for NULL")
    if c.operator in COMPARISONS:
        return COMPARISONS[c.operator](this=column, expression=_literal(c.value, value_loc))
    if c.operator in ("in", "not_in"):
        if not isinstance(c.value, list) or not c.value:
            raise Invalid.at(value_loc, f"{c.operator} takes a non-empty list of values")
        if len(c.value) > MAX_IN_VALUES:
            raise Invalid.at(value_loc, f"at most {MAX_IN_VALUES} values")
        items = [_literal(v, (*value_loc, i)) for i, v in enumerate(c.value)]
        tree = exp.In(this=column, expressions=items)
        return exp.Not(this=tree) if c.operator == "not_in" else tree
    if c.operator == "contains":
        if not isinstance(c.value, str):
            raise Invalid.at(value_loc, "contains takes a string")
        if any(s in c.value for s in _LIKE_SPECIALS):
            raise Invalid.at(value_loc, "contains cannot match '%', '_' or '\\'; use = or in")
        return exp.Like(this=column, expression=exp.Literal.string(f"%{c.value}%"))
    raise Invalid.at((*loc, "operator"), f"unknown operator; one of: {', '.join(OPERATORS)}")


def compile_conditions(
    conditions: Sequence[Condition], fields: Iterable[str | ColumnInfo]
) -> str | None:
    """The whereClause the conditions mean (None for none), checked against the template's
    ``fields`` (names, or columns: then a text value for a boolean field must be 'true' or
    'false', as in any whereClause); a problem names the condition (``filters.2.value``)."""
    if len(conditions) > MAX_CONDITIONS:
        raise Invalid.at(LOC, f"at most {MAX_CONDITIONS} conditions")
    columns = list(fields)
    known = [c.name if isinstance(c, ColumnInfo) else c for c in columns]
    parts = []
    for i, c in enumerate(conditions):
        if c.field not in known:
            raise Invalid.at(
                (*LOC, i, "field"),
                f"unknown field {c.field!r}; the template's fields are: {', '.join(known)}",
            )
        parts.append(_condition(c, (*LOC, i)))
    if not parts:
        return None
    text = exp.and_(*parts).sql(dialect="postgres")
    try:
        parse_where(text, columns)
    except Invalid as exc:  # e.g. too long: the client wrote filters, not a whereClause
        raise Invalid.at(LOC, exc.errors[0].msg) from exc
    return text
