"""Plan → Arrow compute expression, for sources read with ``pyarrow.dataset`` (files).

The whereClause goes through the same parser and allow-list as for databases
(``query.where.parse_where``); only the rendering differs. Literals compared with a column are
cast to that column's Arrow type (``'2026-01-31'`` against a date column is a date), as a
database would coerce them. Arrow's Kleene AND/OR and null-propagating comparisons give SQL's
three-valued logic, and a filter keeps only rows where the condition is true. Where Arrow's
own meaning differs from SQL's (``%``, ``trim``, a date beside a timestamp, NULL keys), the
rendering follows SQL (PostgreSQL), so a whereClause selects the same rows on every source.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import date, datetime, time
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

_Compare = Callable[[Any, Any], Any]
_COMPARE: dict[type[exp.Expr], _Compare] = {
    exp.EQ: operator.eq,
    exp.NEQ: operator.ne,
    exp.GT: operator.gt,
    exp.GTE: operator.ge,
    exp.LT: operator.lt,
    exp.LTE: operator.le,
}
# A date strictly inside a day compared with that day's date: d >= t is d > day, d < t is
# d <= day; = is never true and <> always (for a non-NULL date).
_WITHIN_DAY: dict[_Compare, _Compare] = {
    operator.ge: operator.gt,
    operator.gt: operator.gt,
    operator.le: operator.le,
    operator.lt: operator.le,
    operator.eq: lambda d, _: d != d,
    operator.ne: lambda d, _: d == d,
}
_ARITHMETIC: dict[type[exp.Expr], str] = {
    exp.Add: "add_checked",
    exp.Sub: "subtract_checked",
    exp.Mul: "multiply_checked",
    exp.Div: "divide_checked",
    # SQL's % truncates (-4 % 3 = -1), as Arrow's remainder does; its modulo floors (2).
    # Unchecked: its one overflow, INT64_MIN % -1, is 0 as in SQL; % 0 still fails.
    exp.Mod: "remainder",
}
_SYMBOLS: dict[type[exp.Expr], str] = {
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.Div: "/",
    exp.Mod: "%",
    exp.Neg: "-",
}
_STRING_FUNCTIONS: dict[type[exp.Expr], str] = {
    exp.Lower: "utf8_lower",
    exp.Upper: "utf8_upper",
    exp.Length: "utf8_length",
}
# trim() as PostgreSQL reads it: spaces only by default (not tabs or other Unicode spaces),
# or the given characters, from both ends or the one named.
_TRIMS = {"LEADING": "utf8_ltrim", "TRAILING": "utf8_rtrim", "BOTH": "utf8_trim"}


def plan_filter(plan: ReadPlan, schema: pa.Schema) -> Expression | None:
    """Every condition of the plan (dates, incremental window, whereClause, selected rows)."""
    parts: list[Expression] = []
    if plan.dates is not None:
        field = plan.dates.field
        if plan.dates.start is not None:
            parts.append(_bound(field, operator.ge, plan.dates.start.value, schema))
        if plan.dates.end is not None:
            end = operator.le if plan.dates.end.inclusive else operator.lt
            parts.append(_bound(field, end, plan.dates.end.value, schema))
    if plan.window is not None:
        field = plan.window.field
        if plan.window.low is not None:
            parts.append(_bound(field, operator.gt, plan.window.low, schema))
        parts.append(_bound(field, operator.le, plan.window.high, schema))
    if plan.where:
        tree = parse_where(plan.where, plan.columns or plan.fields)
        parts.append(_checked(_Renderer(schema).render(tree), schema))
    if plan.keys is not None:
        parts.append(_key_match(plan.keys, schema))
    if not parts:
        return None
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part
    return combined


def _bound(field: str, compare: _Compare, value: Any, schema: pa.Schema) -> Expression:
    """``field`` compared with one end of a date range or window."""
    target = schema.field(field).type
    if pa.types.is_date(target) and isinstance(value, datetime):
        return _date_against(pc.field(field), compare, value, target)
    return compare(pc.field(field), _typed(value, schema, field))


def _date_against(
    column: Expression, compare: _Compare, value: datetime, target: pa.DataType
) -> Expression:
    """A date column compared with an instant as PostgreSQL compares them (the date is its
    midnight), in UTC: casting the instant to a date would drop its time of day, in its own
    offset (dateFrom 2026-01-01T12:00:00Z took the 2026-01-01 rows)."""
    instant = naive_utc(value)
    day = pa.scalar(instant.date(), target)
    if instant.time() == time(0):  # a midnight is its date
        return compare(column, day)
    return _WITHIN_DAY[compare](column, day)


def _checked(condition: Expression, schema: pa.Schema) -> Expression:
    """``condition`` once Arrow has typed it against the columns (on no rows): a mismatch
    the renderer did not name is an error of the whereClause, not a failed scan."""
    try:
        schema.empty_table().filter(condition)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise Invalid.at(LOC, f"cannot be evaluated on these columns' types: {exc}") from exc
    return condition


def _typed(value: Any, schema: pa.Schema, field: str) -> pa.Scalar:
    target = schema.field(field).type
    return _cast(value, target, f"{field!r} (of type {target})")


def _cast(value: Any, target: pa.DataType, against: str) -> pa.Scalar:
    """``value`` as a scalar comparable with ``target`` (text forms of dates and numbers too)."""
    is_number = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    try:
        if pa.types.is_timestamp(target) and isinstance(value, str):
            return _instant(value, target)
        if pa.types.is_timestamp(target) and target.tz is None:
            value = naive_utc(value)
        if pa.types.is_decimal(target) and (is_number or isinstance(value, str)):
            # An exact decimal of the literal's own precision: Arrow widens both sides.
            return pa.scalar(Decimal(str(value)))
        if is_number and pa.types.is_floating(target):
            return pa.scalar(float(value) if isinstance(value, Decimal) else value)
        if is_number and pa.types.is_integer(target):
            # A decimal stays one: Arrow compares the integers as decimals, so i = 1.5 holds
            # for none and i < 1.5 for 1 (rounding either side would change that).
            return pa.scalar(value)
        return pa.array([value]).cast(target)[0]
    except (
        ArithmeticError,
        pa.ArrowInvalid,
        pa.ArrowNotImplementedError,
        pa.ArrowTypeError,
    ) as exc:
        shown = repr(value)
        if isinstance(value, date | Decimal):  # as written: 2026-01-31, 1.5
            shown = value.isoformat() if isinstance(value, date) else str(value)
        raise Invalid.at(LOC, f"{shown} cannot be compared with {against}") from exc


def _instant(text: str, target: pa.TimestampType) -> pa.Scalar:
    """Timestamp text as ``target``: with an offset (``Z``, ``+02:00``) the instant it names,
    without one a UTC time, as a run's dateFrom/dateTo are read; a column without a time zone
    holds UTC. Arrow's parser: a fraction finer than the column is refused, not rounded."""
    try:
        parsed = pa.array([text]).cast(pa.timestamp(target.unit, "UTC"))
    except pa.ArrowInvalid:  # no offset
        parsed = pa.array([text]).cast(pa.timestamp(target.unit))
    return parsed.cast(target)[0]


def _value_set(values: list[Any], target: pa.DataType, against: str) -> pa.Array:
    """Values for ``isin``, of ``target``'s type. A number the type cannot hold (1.5 for an
    integer column, 0.125 for a decimal(10,2) one) equals none of its values: left out, as
    SQL's value comparison leaves it unmatched."""
    described = f"{against} (of type {target})"
    members = []
    for value in values:
        scalar = _cast(value, target, described)
        if scalar.type != target:  # a number as itself (_cast): as the column's type
            try:
                scalar = scalar.cast(target)
            except pa.ArrowInvalid:
                continue
        members.append(scalar)
    return pa.array(members, target)


def _key_match(keys: KeySelection, schema: pa.Schema) -> Expression:
    """Rows whose key fields equal a selected row's values; a NULL value matches nothing,
    as in SQL (``=`` and ``IN`` are never true for NULL)."""
    if len(keys.fields) == 1:
        (name,) = keys.fields
        values = _value_set([row[0] for row in keys.values], schema.field(name).type, repr(name))
        options = pc.SetLookupOptions(values, skip_nulls=True)
        return pc.Expression._call("is_in", [pc.field(name)], options)
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


def _is_number(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def _is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _is_datelike(t: pa.DataType) -> bool:
    return pa.types.is_date(t) or pa.types.is_timestamp(t) or _is_text(t)


def _number_type(value: Any) -> pa.DataType | None:
    """A non-integer literal's own type; an integer, like text, is read as the other side."""
    if isinstance(value, int):
        return None
    try:
        return pa.scalar(value).type
    except pa.ArrowInvalid:  # beyond Arrow's decimals: _cast refuses it
        return None


def _wider(a: pa.DataType | None, b: pa.DataType | None) -> pa.DataType | None:
    """The type of an operation on ``a`` and ``b`` (None: unknown), as far as it decides how a
    literal beside it is read: a float beats a decimal beats an integer (``i * 1.5 > 2``
    compares a decimal with 2)."""
    if a is None or b is None:
        return a or b

    def rank(t: pa.DataType) -> int:
        return 2 if pa.types.is_floating(t) else 1 if pa.types.is_decimal(t) else 0

    return b if rank(b) > rank(a) else a


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
            self._require(node, node.this, _is_number, "numbers")
            self._require(node, node.expression, _is_number, "numbers")
            left, right = self._pair(node.this, node.expression)
            return pc.Expression._call(_ARITHMETIC[type(node)], [left, right])
        if isinstance(node, exp.Neg):
            self._require(node, node.this, _is_number, "numbers")
            return pc.Expression._call("negate_checked", [self.render(node.this)])
        return self._function(node)

    def _pair(self, a: exp.Expr, b: exp.Expr) -> tuple[Expression, Expression]:
        """Render both sides, typing a literal on one side by the column on the other."""
        return self.render(a, self._type_of(b)), self.render(b, self._type_of(a))

    def _require(
        self,
        node: exp.Expr,
        operand: exp.Expr,
        accepts: Callable[[pa.DataType], bool],
        kind: str,
    ) -> None:
        """Refuse ``operand`` of a type ``node`` does not take, naming both: Arrow would fail
        the scan with its kernel's name ("utf8_length has no kernel matching int64")."""
        found = self._type_of(operand)
        if found is None or accepts(found):
            return
        if isinstance(node, exp.Func):
            name = f"{node.sql_name().lower()}()"
        else:  # an operator: + - * / % or LIKE
            name = _SYMBOLS.get(type(node), node.key.upper())
        subject = f"column {operand.name!r}" if isinstance(operand, exp.Column) else operand.sql()
        raise Invalid.at(LOC, f"{name} takes {kind}, but {subject} is {found} (in {node.sql()!r})")

    def _in(self, node: exp.In) -> Expression:
        hint = self._type_of(node.this)
        items = node.expressions
        value = self.render(node.this)
        if hint is not None and all(isinstance(i, exp.Literal) for i in items):
            values = [literal_value(i) for i in items]
            array = _value_set(values, hint, node.this.sql())
            # isin() is never null; SQL's `x IN (…)` is null when x is: keep that.
            return pc.if_else(
                value.is_null(), pc.scalar(pa.scalar(None, pa.bool_())), value.isin(array)
            )
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
        self._require(node, node.this, _is_text, "text")
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
            self._require(node, node.this, _is_text, "text")
            return pc.Expression._call(_STRING_FUNCTIONS[type(node)], [self.render(node.this)])
        if isinstance(node, exp.Trim):
            return self._trim(node)
        if isinstance(node, exp.Abs):
            self._require(node, node.this, _is_number, "numbers")
            return pc.Expression._call("abs_checked", [self.render(node.this)])
        if isinstance(node, exp.Coalesce):
            args = [node.this, *node.expressions]
            hint = self._type_of(node)
            return pc.Expression._call("coalesce", [self.render(a, hint) for a in args])
        if isinstance(node, exp.Date):
            self._require(node, node.this, _is_datelike, "a date, a timestamp or text")
            return self.render(node.this).cast(pa.date32())
        raise Invalid.at(LOC, f"{node.sql()!r} cannot be applied to files")

    def _trim(self, node: exp.Trim) -> Expression:
        self._require(node, node.this, _is_text, "text")
        characters = node.args.get("expression")
        if characters is None:
            characters = exp.Literal.string(" ")
        elif not isinstance(characters, exp.Literal) or not characters.is_string:
            raise Invalid.at(LOC, f"trim() needs quoted characters (in {node.sql()!r})")
        function = _TRIMS[node.text("position").upper() or "BOTH"]
        options = pc.TrimOptions(characters.this)
        return pc.Expression._call(function, [self.render(node.this)], options)

    def _type_of(self, node: exp.Expr) -> pa.DataType | None:
        """The Arrow type an operand yields, where it decides how to read a literal."""
        while isinstance(node, exp.Paren | exp.Abs | exp.Neg):
            node = node.this
        if isinstance(node, exp.Column):
            return self._schema.field(node.name).type
        if isinstance(node, exp.Literal) and not node.is_string:
            return _number_type(literal_value(node))
        if isinstance(node, exp.Date):
            return pa.date32()
        if isinstance(node, exp.Length):
            return pa.int64()
        if isinstance(node, exp.Lower | exp.Upper | exp.Trim):
            return pa.string()
        if type(node) in _ARITHMETIC:
            return _wider(self._type_of(node.this), self._type_of(node.expression))
        if isinstance(node, exp.Coalesce):
            found: pa.DataType | None = None
            for arg in [node.this, *node.expressions]:
                found = _wider(found, self._type_of(arg))
            return found
        return None
