"""whereClause: parse with sqlglot, allow only a small safe grammar, render with bound literals.

Allowed: column references to the template's fields, literals, comparisons, AND/OR/NOT,
IN (list), BETWEEN, LIKE/ILIKE, IS [NOT] NULL, arithmetic, parentheses, and the pure functions
lower, upper, trim, coalesce, date, abs, length, each given the arguments it takes.
Everything else — subqueries, other tables, comments, several statements, unknown columns or
functions, a function given too many or too few arguments — is refused with a message that
quotes the offending part. Given the columns' types, a text literal compared with a boolean
column is read as a boolean ('true' or 'false'), so that every source compares the same values.
Literals never reach SQL text: they become bound parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlglot
from sqlglot import Token, TokenType, exp
from sqlglot.errors import ParseError, TokenError

from egress.domain.catalog import ColumnInfo
from egress.domain.errors import Invalid
from egress.domain.options import utc_text

MAX_LENGTH = 4000
MAX_DEPTH = 64
LOC = ("body", "where_clause")

_ALLOWED: tuple[type[exp.Expr], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Tuple,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.And,
    exp.Or,
    exp.Not,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Is,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.Neg,
    exp.Lower,
    exp.Upper,
    exp.Trim,
    exp.Coalesce,
    exp.Date,
    exp.Abs,
    exp.Length,
)
_FUNCTIONS = "lower, upper, trim, coalesce, date, abs, length"

# How many arguments each function takes: (fewest, most or None, as told). sqlglot reads more
# into some than a source takes (``length(s, 'utf8')``, SQLite's ``date(dt, '+1 day')``), and
# refuses others in its own words: a run of ``length(s, 2)`` failed on PostgreSQL and SQLite
# and ignored the 2 on MySQL and files.
_ARITY: dict[type[exp.Func], tuple[int, int | None, str]] = {
    exp.Lower: (1, 1, "1 argument"),
    exp.Upper: (1, 1, "1 argument"),
    exp.Abs: (1, 1, "1 argument"),
    exp.Length: (1, 1, "1 argument"),
    exp.Date: (1, 1, "1 argument"),
    exp.Trim: (1, 2, "1 or 2 arguments: the text, and the characters to remove"),
    exp.Coalesce: (2, None, "2 or more arguments"),  # SQLite's takes no fewer
}
_ARITY_BY_NAME = {cls.key: arity for cls, arity in _ARITY.items()}
# Tokens that name no function even when a '(' follows them.
_NOT_NAMES = (TokenType.STRING, TokenType.IDENTIFIER, TokenType.NUMBER)

# A text literal compared with a boolean column is read as one of these, in any letter case.
# Bound as text, MySQL's BOOLEAN (a TINYINT) read 'true' as 0 and SQLite's stored 1 and 0 equal
# no text: `b = 'true'` selected the false rows on MariaDB and none on SQLite.
BOOLEAN_TEXT = {"true": True, "false": False}


def _refuse(message: str) -> Invalid:
    return Invalid.at(LOC, message)


def _depth(node: exp.Expr) -> int:
    deepest = 0
    stack: list[tuple[exp.Expr, int]] = [(node, 1)]
    while stack:
        current, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((child, d + 1) for child in current.iter_expressions())
    return deepest


def _comments(nodes: Iterable[exp.Expr]) -> bool:
    return any(n.comments for n in nodes)


def parse_where(text: str, fields: Iterable[str | ColumnInfo]) -> exp.Expr:
    """Validate ``text`` against the grammar and the template's fields; return its AST.

    ``fields``: the template's column names, or its columns. Given their types, a text literal
    compared with a boolean column must spell a boolean and is TRUE or FALSE in the tree, which
    every source renders: a run parses with the columns, and so should a check of a
    configuration or a trigger, to refuse such a literal before any run."""
    if len(text) > MAX_LENGTH:
        raise _refuse(f"is {len(text)} characters long; the limit is {MAX_LENGTH}")
    if not text.strip():
        raise _refuse("is empty")
    if text.count("(") > MAX_DEPTH:
        raise _refuse(f"nests deeper than {MAX_DEPTH} levels")
    try:
        tokens = sqlglot.tokenize(text, read="postgres")
    except (TokenError, ParseError) as exc:
        raise _refuse(f"is not a valid expression: {_first_line(exc)}") from exc
    if any(t.token_type is TokenType.SEMICOLON for t in tokens):
        raise _refuse("must be a single expression; ';' is not allowed")
    if any(t.comments for t in tokens):
        raise _refuse("comments are not allowed")
    _check_calls(text, tokens)
    try:
        statements = sqlglot.parse(text, read="postgres")
    except (ParseError, TokenError) as exc:
        raise _refuse(f"is not a valid expression: {_first_line(exc)}") from exc
    except RecursionError as exc:
        raise _refuse(f"nests deeper than {MAX_DEPTH} levels") from exc
    if len(statements) != 1 or statements[0] is None:
        raise _refuse("must be a single expression")
    tree = statements[0]
    if _depth(tree) > MAX_DEPTH:
        raise _refuse(f"nests deeper than {MAX_DEPTH} levels")
    nodes = list(tree.walk())
    if _comments(nodes):
        raise _refuse("comments are not allowed")
    columns = [f if isinstance(f, ColumnInfo) else ColumnInfo(f, "") for f in fields]
    known = {c.name for c in columns}
    for node in nodes:
        if isinstance(node, exp.Anonymous):
            raise _refuse(
                f"function {node.name}() is not allowed (in {node.sql()!r}); "
                f"allowed functions: {_FUNCTIONS}"
            )
        if isinstance(node, exp.Func) and not isinstance(node, _ALLOWED):
            name = node.sql_name().lower()
            raise _refuse(
                f"function {name}() is not allowed (in {node.sql()!r}); "
                f"allowed functions: {_FUNCTIONS}"
            )
        if not isinstance(node, _ALLOWED):
            raise _refuse(f"{_describe(node)} is not allowed (in {node.sql()!r})")
        if isinstance(node, exp.Func):
            _check_arguments(node)
        if isinstance(node, exp.Column):
            if node.table or node.args.get("db") or node.args.get("catalog"):
                raise _refuse(f"column {node.sql()!r} must not name a table")
            if node.name not in known:
                raise _refuse(
                    f"unknown column {node.name!r}; the template's fields are: "
                    f"{', '.join(sorted(known))}"
                )
        if isinstance(node, exp.In) and (node.args.get("query") or node.args.get("unnest")):
            raise _refuse(f"IN takes a list of values, not a query (in {node.sql()!r})")
        if isinstance(node, exp.Literal) and not node.is_string:
            _number(node.this)
    if not _is_boolean(tree):
        raise _refuse("must be a boolean condition, e.g. region = 'EU' AND amount > 100")
    _read_booleans(tree, {c.name for c in columns if c.type == "boolean"})
    return tree


def _arity_problem(function: str, given: int, written: str) -> Invalid | None:
    fewest, most, told = _ARITY_BY_NAME[function]
    if fewest <= given and (most is None or given <= most):
        return None
    return _refuse(f"function {function}() takes {told}, not {given} (in {written!r})")


def _check_calls(text: str, tokens: list[Token]) -> None:
    """Each call of a function of the grammar given the arguments it takes, counted as written:
    sqlglot drops a third argument of length() and refuses abs(x, 1) without naming abs."""
    calls: list[_Call] = []  # one per open parenthesis
    for i, token in enumerate(tokens):
        kind = token.token_type
        if calls and kind is not TokenType.R_PAREN:
            calls[-1].filled = True
            if kind is TokenType.COMMA:
                calls[-1].commas += 1
        if kind is TokenType.L_PAREN:
            before = tokens[i - 1] if i else None
            named = before is not None and before.token_type not in _NOT_NAMES
            function = before.text.lower() if named and before is not None else ""
            calls.append(_Call(before if function in _ARITY_BY_NAME else None))
        elif kind is TokenType.R_PAREN and calls:
            call = calls.pop()
            if call.name is not None:
                given = call.commas + 1 if call.filled else 0
                written = text[call.name.start : token.end + 1]
                problem = _arity_problem(call.name.text.lower(), given, written)
                if problem is not None:
                    raise problem


@dataclass
class _Call:
    """An open parenthesis: the name of the function it calls (None: no function of the
    grammar), the commas at its own depth so far, and whether anything stands inside it."""

    name: Token | None
    commas: int = 0
    filled: bool = False


def _check_arguments(node: exp.Func) -> None:
    """``node`` given the arguments it takes, counted in the tree: a function spelt another way
    (char_length, ifnull) is checked too, and an argument sqlglot keeps in a slot of its own
    (length's encoding, date's zone) counts."""
    if type(node) not in _ARITY:
        return
    given = 0
    for value in node.args.values():
        items = value if isinstance(value, list) else [value]
        given += sum(isinstance(item, exp.Expr) for item in items)
    problem = _arity_problem(node.key, given, node.sql())
    if problem is not None:
        raise problem


def _read_booleans(tree: exp.Expr, booleans: Collection[str]) -> None:
    """Replace, in ``tree``, each text literal compared with a boolean column (or coalesced with
    one) by TRUE or FALSE; refuse one that spells neither, naming the column."""
    if not booleans:
        return

    def column_of(node: exp.Expr) -> str | None:
        """The boolean column ``node`` yields the value of, if it does."""
        node = _bare(node)
        if isinstance(node, exp.Column):
            return node.name if node.name in booleans else None
        if isinstance(node, exp.Coalesce):
            return next(filter(None, map(column_of, [node.this, *node.expressions])), None)
        return None

    for node in list(tree.find_all(*_COMPARED, exp.Coalesce)):
        if isinstance(node, exp.Coalesce):
            operands = [node.this, *node.expressions]
        else:
            operands = _operands(node)
        name = next(filter(None, map(column_of, operands)), None)
        if name is None:
            continue
        literals = [_bare(o) for o in operands]
        texts = [t for t in literals if isinstance(t, exp.Literal) and t.is_string]
        for literal in texts:  # each checked before any is replaced: the message quotes them
            if literal.this.lower() not in BOOLEAN_TEXT:
                raise _refuse(
                    f"{literal.sql()} cannot be compared with boolean column {name!r}: write "
                    f"'true' or 'false' (in any letter case), or TRUE or FALSE "
                    f"(in {node.sql()!r})"
                )
        for literal in texts:
            literal.replace(exp.Boolean(this=BOOLEAN_TEXT[literal.this.lower()]))


def _is_boolean(tree: exp.Expr) -> bool:
    while isinstance(tree, exp.Paren):
        tree = tree.this
    return isinstance(
        tree,
        exp.EQ
        | exp.NEQ
        | exp.GT
        | exp.GTE
        | exp.LT
        | exp.LTE
        | exp.And
        | exp.Or
        | exp.Not
        | exp.In
        | exp.Between
        | exp.Like
        | exp.ILike
        | exp.Is
        | exp.Boolean
        | exp.Column,
    )


def _describe(node: exp.Expr) -> str:
    if isinstance(node, exp.Select | exp.Subquery | exp.Query):
        return "a subquery"
    if isinstance(node, exp.Table):
        return "a table reference"
    return f"{type(node).__name__.upper()} ({node.key})"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _number(text: str) -> int | Decimal:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return Decimal(text)
    except InvalidOperation:
        raise _refuse(f"{text!r} is not a number") from None


def literal_value(node: exp.Literal) -> str | int | Decimal:
    """The Python value of a SQL literal: a string literal's text (str), an integer (int), any
    other number (with a point or an exponent: ``1.5``, ``1e3``) as the exact Decimal it spells.
    A float rounded ``12345678901234567.1`` before the source compared it."""
    return node.this if node.is_string else _number(node.this)


def _itself(node: exp.Expr) -> exp.Expr:
    return node


@dataclass(frozen=True)
class Comparisons:
    """What a source needs in a comparison beyond sqlglot's rendering of it.

    A date or time column (``date``, ``timestamp``, ``timestamptz``) compared with anything:
    ``instant`` wraps each side that is not a value (SQLite: its ``egress_instant()``),
    ``instant_value`` converts each value (a literal, a bound, a key); by default a value's UTC
    offset is applied and dropped (``utc_text``), as for ``dateFrom``. ``like_escape``: the
    escape character LIKE is given explicitly (SQLite has no default one)."""

    instant: Callable[[exp.Expr], exp.Expr] = _itself
    instant_value: Callable[[Any], Any] = utc_text
    like_escape: str | None = None


# Comparisons whose operands are all read alike: one date or time among them makes each an instant.
_COMPARED = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between, exp.In)
_SIDES = ("this", "expression", "low", "high")


def _bare(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _operands(node: exp.Expr) -> list[exp.Expr]:
    sides = [node.args[key] for key in _SIDES if node.args.get(key) is not None]
    return [*sides, *node.expressions] if isinstance(node, exp.In) else sides


def _is_instant(node: exp.Expr, temporal: Collection[str]) -> bool:
    """Whether ``node`` yields a date or time: a column among ``temporal``, or date()."""
    node = _bare(node)
    return isinstance(node, exp.Date) or (isinstance(node, exp.Column) and node.name in temporal)


def _escaped(tree: exp.Expr, escape: str) -> exp.Expr:
    """``tree`` with ``escape`` as every LIKE's ESCAPE character: a literal, bound as any."""
    for like in list(tree.find_all(exp.Like, exp.ILike)):
        escaped = exp.Escape(expression=exp.Literal.string(escape))
        if like is tree:
            tree = escaped
        else:
            like.replace(escaped)
        escaped.set("this", like)
    return tree


def bind_where(
    tree: exp.Expr,
    bind: Callable[[Any], exp.Expr],
    temporal: Collection[str] = (),
    rules: Comparisons = Comparisons(),
) -> exp.Expr:
    """A copy of ``tree`` with quoted columns and every literal replaced by ``bind(value)``;
    comparisons with the ``temporal`` columns (and date()) as ``rules`` says."""

    def side(node: exp.Expr) -> exp.Expr:
        bare = _bare(node)
        if isinstance(bare, exp.Literal):
            return bind(rules.instant_value(literal_value(bare)))
        return node if isinstance(bare, exp.Null) else rules.instant(node)

    def visit(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Literal):
            return bind(literal_value(node))
        if isinstance(node, exp.Column):
            return exp.column(node.name, quoted=True)
        # Changed in place: transform() goes on into the node's children as they are now.
        if isinstance(node, _COMPARED) and any(_is_instant(o, temporal) for o in _operands(node)):
            for key in _SIDES:
                if node.args.get(key) is not None:
                    node.set(key, side(node.args[key]))
            if isinstance(node, exp.In):
                node.set("expressions", [side(e) for e in node.expressions])
        elif isinstance(node, exp.Date) and _is_instant(node.this, temporal):
            node.set("this", rules.instant(node.this))
        return node

    copied = tree.copy()
    if rules.like_escape is not None:
        copied = _escaped(copied, rules.like_escape)
    return copied.transform(visit, copy=False)
