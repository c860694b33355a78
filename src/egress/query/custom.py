"""SQL templates: an admin's SELECT, checked by parsing before it is stored and before it runs.

The query must parse, in the connection's dialect, as exactly one SELECT (a UNION or a
``WITH … SELECT`` is fine) with nothing anywhere in its tree that writes, locks or changes
state: no INSERT/UPDATE/DELETE/MERGE (PostgreSQL allows them inside a WITH), no DDL, no
``SELECT … INTO``, no ``FOR UPDATE``/``FOR SHARE``, no SET/CALL/PRAGMA/… and no second statement.

Runs never send the stored text: they parse it again and render the checked tree (comments
dropped) as a subquery, so what reaches the source is exactly what passed these checks.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import TokenType, exp
from sqlglot.errors import ParseError, TokenError

from egress.domain.errors import Invalid

MAX_LENGTH = 100_000
LOC = ("body", "query")
# The alias of the query where a plan reads it: ``SELECT … FROM (<query>) AS "q"``.
ALIAS = "q"

# Statements (and clauses) that must not appear anywhere in the tree; the parser only nests
# DML in a WITH, INTO and locks in a SELECT, but a whole-tree check costs nothing.
_FORBIDDEN: tuple[type[exp.Expr], ...] = (
    exp.DML,  # UPDATE, DELETE, MERGE, COPY
    exp.DDL,  # INSERT, CREATE
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Grant,
    exp.Revoke,
    exp.Set,
    exp.Command,  # what sqlglot cannot parse further: CALL, EXPLAIN, LOCK, VACUUM, …
    exp.Pragma,
    exp.Attach,
    exp.Detach,
    exp.Use,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.LoadData,
    exp.Describe,
    exp.Show,
    exp.Analyze,
    exp.Kill,
    exp.Execute,
    exp.Comment,
    exp.Declare,
    exp.Cache,
    exp.Uncache,
    exp.Refresh,
    exp.Into,
    exp.Lock,
)
_EXCERPT = 120
# sqlglot puts a token's repr in some messages; the user wrote only its text.
_TOKEN_REPR = re.compile(r"<Token token_type: [^,]*, text: (.*?), line: \d+.*?>")


def _refuse(message: str) -> Invalid:
    return Invalid.at(LOC, message)


def _excerpt(node: exp.Expr, dialect: str) -> str:
    try:
        text = node.sql(dialect=dialect, comments=False)
    except RecursionError:
        return _label(node)
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def _label(node: exp.Expr) -> str:
    """How the user wrote it: ``DELETE``, ``SELECT … INTO``, ``FOR UPDATE``, ``CALL``."""
    if isinstance(node, exp.Into):
        return "SELECT … INTO"
    if isinstance(node, exp.Lock):
        return "a locking clause (FOR UPDATE / FOR SHARE)"
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    if isinstance(node, exp.TruncateTable):
        return "TRUNCATE"
    if isinstance(node, exp.Transaction):
        return "BEGIN"
    return node.key.upper()


def _parse_error(exc: ParseError | TokenError) -> str:
    """sqlglot's first error with its position and the token it stopped at."""
    details = getattr(exc, "errors", None)
    if details:
        first = details[0]
        near = f" near {first['highlight']!r}" if first.get("highlight") else ""
        description = _TOKEN_REPR.sub(r"'\1'", str(first["description"]))
        return (
            f"is not valid SQL: {description} at line {first['line']}, column {first['col']}{near}"
        )
    lines = str(exc).strip().splitlines()
    return f"is not valid SQL: {lines[0] if lines else type(exc).__name__}"


def _strip_terminator(text: str, dialect: str) -> str:
    """``text`` without a trailing ``;``: one statement pasted with its terminator is fine,
    but a ``;`` anywhere else separates statements."""
    try:
        tokens = sqlglot.tokenize(text, read=dialect)
    except (TokenError, ParseError) as exc:
        raise _refuse(_parse_error(exc)) from exc
    terminated = bool(tokens) and tokens[-1].token_type is TokenType.SEMICOLON
    while tokens and tokens[-1].token_type is TokenType.SEMICOLON:
        tokens.pop()
    if any(t.token_type is TokenType.SEMICOLON for t in tokens):
        raise _refuse("must be a single statement; ';' separates statements and is not allowed")
    if not tokens:
        raise _refuse("is empty")
    return (text[: tokens[-1].end + 1] if terminated else text).strip()


def check_query(text: str, dialect: str) -> str:
    """The query as it will be stored (trailing ``;`` removed); Invalid at ``query`` when it
    is not exactly one read-only SELECT."""
    if len(text) > MAX_LENGTH:
        raise _refuse(f"is {len(text)} characters long; the limit is {MAX_LENGTH}")
    if not text.strip():
        raise _refuse("is empty")
    stripped = _strip_terminator(text, dialect)
    try:  # rendered once here, so a run never meets a tree too deep to render
        probe_statement(stripped, dialect)
    except RecursionError as exc:
        raise _refuse("nests too deeply to be run") from exc
    return stripped


def parse_query(text: str, dialect: str) -> exp.Query:
    """The checked parse tree of a SQL template's query, comments removed."""
    try:
        statements = sqlglot.parse(text, read=dialect)
    except (ParseError, TokenError) as exc:
        raise _refuse(_parse_error(exc)) from exc
    except RecursionError as exc:
        raise _refuse("nests too deeply to be parsed") from exc
    trees = [s for s in statements if s is not None]
    if len(trees) != 1:
        raise _refuse("must be a single statement")
    tree = trees[0]
    if not isinstance(tree, exp.Select | exp.SetOperation | exp.Subquery):
        # A statement is named by its kind (a WITH may precede a DELETE); anything else,
        # such as VALUES, by the word it starts with.
        found = (
            _label(tree)
            if isinstance(tree, _FORBIDDEN)
            else sqlglot.tokenize(text, read=dialect)[0].text.upper()
        )
        raise _refuse(f"must be a SELECT; found {found} (in {_excerpt(tree, dialect)!r})")
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN):
            raise _refuse(
                f"{_label(node)} is not allowed in a SQL template "
                f"(in {_excerpt(node, dialect)!r}); it must only read"
            )
        node.pop_comments()
    return tree


def subquery(text: str, dialect: str) -> exp.Subquery:
    """``(<query>) AS "q"``: the relation a plan selects from instead of a table."""
    return exp.Subquery(
        this=parse_query(text, dialect),
        alias=exp.TableAlias(this=exp.to_identifier(ALIAS, quoted=True)),
    )


def probe_statement(text: str, dialect: str) -> str:
    """``SELECT * FROM (<query>) AS "q" LIMIT 0``: the source describes the result columns
    without producing a row."""
    return exp.select("*").from_(subquery(text, dialect)).limit(0).sql(dialect=dialect)
