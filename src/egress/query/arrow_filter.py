"""Plan → Arrow compute expression, for sources read with ``pyarrow.dataset`` (files).

The whereClause goes through the same parser and allow-list as for databases
(``query.where.parse_where``); only the rendering differs. Literals compared with a column are
cast to that column's Arrow type (``'2026-01-31'`` against a date column is a date), as a
database would coerce them. Arrow's Kleene AND/OR and null-propagating comparisons give SQL's
three-valued logic, and a filter keeps only rows where the condition is true.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow.compute import Expression
from sqlglot import exp

from egress.domain.errors import Invalid
from egress.domain.options import naive_utc
from egress.domain.plan import KeySelection, ReadPlan
from egress.query.where import LOC, literal_value, parse_where

_COMPARE: dict[type[exp.Expr], Callable[[Expression, Expression], Expression]] = {
    exp.EQ: lambda a, b: a == b,
    exp.NEQ: lambda a, b: a != b,
    exp.GT: lambda a, b: a > b,
    exp.GTE: lambda a, b: a >= b,
    exp.LT: lambda a, b: a < b,
    exp.LTE: lambda a, b: a <= b,
}
_ARITHMETIC: dict[type[exp.Expr], str] = {
    exp.Add: "add_checked",
    exp.Sub: "subtract_checked",
    exp.Mul: "multiply_checked",
    exp.Div: "divide_checked",
    exp.Mod: "modulo_checked",
}
_STRING_FUNCTIONS: dict[type[exp.Expr], str] = {
    exp.Lower: "utf8_lower",
    exp.Upper: "utf8_upper",
    exp.Trim: "utf8_trim_whitespace",
    exp.Length: "utf8_length",
}


def plan_filter(plan: ReadPlan, schema: pa.Schema) -> Expression | None:
    """Every condition of the plan (dates, incremental window, whereClause, selected rows)."""
    parts: list[Expression] = []
    if plan.dates is not None:
        field = plan.dates.field
        if plan.dates.start is not None:
            parts.append(pc.field(field) >= _typed(plan.dates.start.value, schema, field))
        if plan.dates.end is not None:
            end = _typed(plan.dates.end.value, schema, field)
            parts.append(
                pc.field(field) <= end if plan.dates.end.inclusive else pc.field(field) < end
            )
    if plan.window is not None:
        field = plan.window.field
        if plan.window.low is not None:
            parts.append(pc.field(field) > _typed(plan.window.low, schema, field))
        parts.append(pc.field(field) <= _typed(plan.window.high, schema, field))
    if plan.where:
        tree = parse_where(plan.where, [c.name for c in plan.columns or plan.fields])
        parts.append(_Renderer(schema).render(tree))
    if plan.keys is not None:
        parts.append(_key_match(plan.keys, schema))
    if not parts:
        return None
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part
    return combined


def _typed(value: Any, schema: pa.Schema, field: str) -> pa.Scalar:
    target = schema.field(field).type
    return _cast(value, target, f"{field!r} (of type {target})")


def _cast(value: Any, target: pa.DataType, against: str) -> pa.Scalar:
    """``value`` as a scalar comparable with ``target`` (text forms of dates and numbers too)."""
    if pa.types.is_timestamp(target) and target.tz is None:
        value = naive_utc(value)
    if isinstance(value, datetime) and pa.types.is_date(target):
        value = value.date() if value.time() == datetime.min.time() else value
    is_number = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    try:
        if pa.types.is_decimal(target) and (is_number or isinstance(value, str)):
            # An exact decimal of the literal's own precision: Arrow widens both sides.
            return pa.scalar(Decimal(str(value)))
        if is_number and (pa.types.is_integer(target) or pa.types.is_floating(target)):
            return pa.scalar(value)
        return pa.array([value]).cast(target)[0]
    except (
        ArithmeticError,
        pa.ArrowInvalid,
        pa.ArrowNotImplementedError,
        pa.ArrowTypeError,
    ) as exc:
        shown = value.isoformat() if isinstance(value, date) else repr(value)
        raise Invalid.at(LOC, f"{shown} cannot be compared with {against}") from exc


def _value_set(values: list[Any], target: pa.DataType, against: str) -> pa.Array:
    """Values for ``isin``, of ``target``'s type."""
    described = f"{against} (of type {target})"
    scalars = [_cast(v, target, described).as_py() for v in values]
    try:
        return pa.array(scalars).cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise Invalid.at(LOC, f"values for {described} do not fit: {exc}") from exc


def _key_match(keys: KeySelection, schema: pa.Schema) -> Expression:
    if len(keys.fields) == 1:
        (name,) = keys.fields
        values = _value_set([row[0] for row in keys.values], schema.field(name).type, repr(name))
        return pc.field(name).isin(values)
    rows: Expression | None = None
    for row in keys.values:
        match: Expression | None = None
        for name, value in zip(keys.fields, row, strict=True):
            cond = pc.field(name) == _typed(value, schema, name)
            match = cond if match is None else match & cond
        assert match is not None
        rows = match if rows is None else rows | match
    assert rows is not None
    return rows


class _Renderer:
    """One validated whereClause AST → one Arrow expression."""

    def __init__(self, schema: pa.Schema) -> None:
        self._schema = schema

    def render(self, node: exp.Expr, hint: pa.DataType | None = None) -> Expression:
        """``hint``: the type of what a literal in this position is compared with."""
        rendered = self._render(node, hint)
        # sqlglot keeps `IS NOT NULL` and `NOT LIKE` as one node with a negate flag.
        return ~rendered if node.args.get("negate") else rendered

    def _render(self, node: exp.Expr, hint: pa.DataType | None) -> Expression:
        if isinstance(node, exp.Paren):
            return self.render(node.this, hint)
        if isinstance(node, exp.Column):
            return pc.field(node.name)
        if isinstance(node, exp.Literal):
            value = literal_value(node)
            if hint is None:
                return pc.scalar(value)
            return pc.scalar(_cast(value, hint, f"values of type {hint}"))
        if isinstance(node, exp.Boolean):
            return pc.scalar(bool(node.this))
        if isinstance(node, exp.Null):
            return pc.scalar(None)
        if isinstance(node, exp.And):
            return self.render(node.this) & self.render(node.expression)
        if isinstance(node, exp.Or):
            return self.render(node.this) | self.render(node.expression)
        if isinstance(node, exp.Not):
            return ~self.render(node.this)
        if type(node) in _COMPARE:
            left, right = self._pair(node.this, node.expression)
            return _COMPARE[type(node)](left, right)
        if isinstance(node, exp.Between):
            hint = self._type_of(node.this)
            value = self.render(node.this)
            low = self.render(node.args["low"], hint)
            high = self.render(node.args["high"], hint)
            return (value >= low) & (value <= high)
        if isinstance(node, exp.In):
            return self._in(node)
        if isinstance(node, exp.Like | exp.ILike):
            return self._like(node)
        if isinstance(node, exp.Is):
            return self._is(node)
        if type(node) in _ARITHMETIC:
            left, right = self._pair(node.this, node.expression)
            return pc.Expression._call(_ARITHMETIC[type(node)], [left, right])
        if isinstance(node, exp.Neg):
            return pc.Expression._call("negate_checked", [self.render(node.this)])
        return self._function(node)

    def _pair(self, a: exp.Expr, b: exp.Expr) -> tuple[Expression, Expression]:
        """Render both sides, typing a literal on one side by the column on the other."""
        return self.render(a, self._type_of(b)), self.render(b, self._type_of(a))

    def _in(self, node: exp.In) -> Expression:
        hint = self._type_of(node.this)
        items = node.expressions
        if all(isinstance(i, exp.Literal) for i in items):
            values = [literal_value(i) for i in items]
            array = pa.array(values) if hint is None else _value_set(values, hint, node.this.sql())
            # isin() is never null; SQL's `x IN (…)` is null when x is: keep that.
            value = self.render(node.this)
            return pc.if_else(
                value.is_null(), pc.scalar(pa.scalar(None, pa.bool_())), value.isin(array)
            )
        value = self.render(node.this)
        result: Expression | None = None
        for item in items:
            cond = value == self.render(item, hint)
            result = cond if result is None else result | cond
        assert result is not None
        return result

    def _like(self, node: exp.Like | exp.ILike) -> Expression:
        pattern = node.expression
        if not isinstance(pattern, exp.Literal) or not pattern.is_string:
            raise Invalid.at(LOC, f"LIKE needs a quoted text pattern (in {node.sql()!r})")
        options = pc.MatchSubstringOptions(pattern.this, ignore_case=isinstance(node, exp.ILike))
        return pc.Expression._call("match_like", [self.render(node.this)], options)

    def _is(self, node: exp.Is) -> Expression:
        value = self.render(node.this)
        target = node.expression
        if isinstance(target, exp.Null):
            return value.is_null()
        if isinstance(target, exp.Boolean):  # x IS TRUE / IS FALSE: never null
            return pc.Expression._call(
                "coalesce", [value == pc.scalar(bool(target.this)), pc.scalar(False)]
            )
        raise Invalid.at(LOC, f"IS takes NULL, TRUE or FALSE (in {node.sql()!r})")

    def _function(self, node: exp.Expr) -> Expression:
        if type(node) in _STRING_FUNCTIONS:
            return pc.Expression._call(_STRING_FUNCTIONS[type(node)], [self.render(node.this)])
        if isinstance(node, exp.Abs):
            return pc.Expression._call("abs_checked", [self.render(node.this)])
        if isinstance(node, exp.Coalesce):
            args = [node.this, *node.expressions]
            hint = next((t for a in args if (t := self._type_of(a)) is not None), None)
            return pc.Expression._call("coalesce", [self.render(a, hint) for a in args])
        if isinstance(node, exp.Date):
            return self.render(node.this).cast(pa.date32())
        raise Invalid.at(LOC, f"{node.sql()!r} cannot be applied to files")

    def _type_of(self, node: exp.Expr) -> pa.DataType | None:
        """The Arrow type an operand yields, where it decides how to read a literal."""
        while isinstance(node, exp.Paren | exp.Coalesce | exp.Abs | exp.Neg):
            node = node.this
        if isinstance(node, exp.Column):
            return self._schema.field(node.name).type
        if isinstance(node, exp.Date):
            return pa.date32()
        if isinstance(node, exp.Length):
            return pa.int64()
        if isinstance(node, exp.Lower | exp.Upper | exp.Trim):
            return pa.string()
        if type(node) in _ARITHMETIC:
            return self._type_of(node.this) or self._type_of(node.expression)
        return None
