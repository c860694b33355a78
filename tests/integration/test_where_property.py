"""Property: a random whereClause from the allowed grammar selects, on real PostgreSQL, SQLite
and MariaDB sources and on a Parquet file (Arrow compute expressions), exactly the rows the same
predicate selects when evaluated in Python (with SQL's three-valued NULL logic)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.plan import ReadPlan
from egress.sources import Source
from egress.sources.arrow_types import arrow_schema
from egress.sources.files import FilesSettings, FilesSource
from egress.sources.mysql import MysqlSettings, MysqlSource
from egress.sources.postgresql import PostgresSettings, PostgresSource
from egress.sources.sqlite import SqliteSettings, SqliteSource
from tests.conftest import MysqlDatabase, PgDatabase
from tests.support.policy import policy_for

WORDS = ["apple", "banana", "cherry", "date", "elder", "fig", "grape"]
DATA = [
    (
        i,
        None if i % 7 == 0 else (i * 37) % 50 - 10,
        None if i % 5 == 0 else WORDS[i % 7],
        None if i % 3 == 0 else i % 4,
    )
    for i in range(1, 61)
]  # (id, a, b, d)
FIELDS = [
    ColumnInfo("id", "int64", False),
    ColumnInfo("a", "int64"),
    ColumnInfo("b", "string"),
    ColumnInfo("d", "int64"),
]

Row = tuple[Any, ...]
Pred = Callable[[Row], bool | None]


@dataclass(frozen=True)
class Expr:
    sql: str
    eval: Pred


def _cmp(op: str, x: Any, y: Any) -> bool | None:
    if x is None or y is None:
        return None
    return {"=": x == y, "<>": x != y, "<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


INT_COLS = {"a": 1, "d": 3}
OPS = ["=", "<>", "<", "<=", ">", ">="]


def _int_term() -> st.SearchStrategy[tuple[str, Callable[[Row], Any]]]:
    col = st.sampled_from(sorted(INT_COLS)).map(lambda c: (c, lambda r, i=INT_COLS[c]: r[i]))
    plus = st.tuples(st.sampled_from(sorted(INT_COLS)), st.integers(-5, 5)).map(
        lambda t: (
            f"({t[0]} + {t[1]})",
            lambda r, i=INT_COLS[t[0]], k=t[1]: None if r[i] is None else r[i] + k,
        )
    )
    absolute = st.sampled_from(sorted(INT_COLS)).map(
        lambda c: (f"abs({c})", lambda r, i=INT_COLS[c]: None if r[i] is None else abs(r[i]))
    )
    coalesce = st.tuples(st.sampled_from(sorted(INT_COLS)), st.integers(-3, 3)).map(
        lambda t: (
            f"coalesce({t[0]}, {t[1]})",
            lambda r, i=INT_COLS[t[0]], k=t[1]: t[1] if r[i] is None else r[i],
        )
    )
    length = st.just(("length(b)", lambda r: None if r[2] is None else len(r[2])))
    return st.one_of(col, plus, absolute, coalesce, length)


def _literal(n: int) -> str:
    return str(n) if n >= 0 else f"-{-n}"


def atoms() -> st.SearchStrategy[Expr]:
    int_cmp = st.tuples(_int_term(), st.sampled_from(OPS), st.integers(-12, 45)).map(
        lambda t: Expr(
            f"{t[0][0]} {t[1]} {_literal(t[2])}",
            lambda r, f=t[0][1], op=t[1], k=t[2]: _cmp(op, f(r), k),
        )
    )
    text_cmp = st.tuples(st.sampled_from(["=", "<>", "<", ">="]), st.sampled_from(WORDS)).map(
        lambda t: Expr(f"b {t[0]} '{t[1]}'", lambda r, op=t[0], w=t[1]: _cmp(op, r[2], w))
    )
    upper = st.sampled_from(WORDS).map(
        lambda w: Expr(
            f"upper(b) = '{w.upper()}'",
            lambda r, w=w: None if r[2] is None else r[2].upper() == w.upper(),
        )
    )
    is_null = st.tuples(st.sampled_from(["a", "b", "d"]), st.booleans()).map(
        lambda t: Expr(
            f"{t[0]} IS {'NOT ' if t[1] else ''}NULL",
            lambda r, i={"a": 1, "b": 2, "d": 3}[t[0]], neg=t[1]: (r[i] is None) != neg,
        )
    )
    in_list = st.lists(st.integers(-10, 40), min_size=1, max_size=5).map(
        lambda xs: Expr(
            f"a IN ({', '.join(_literal(x) for x in xs)})",
            lambda r, xs=tuple(xs): None if r[1] is None else r[1] in xs,
        )
    )
    between = st.tuples(st.integers(-10, 40), st.integers(0, 20)).map(
        lambda t: Expr(
            f"a BETWEEN {_literal(t[0])} AND {_literal(t[0] + t[1])}",
            lambda r, lo=t[0], hi=t[0] + t[1]: None if r[1] is None else lo <= r[1] <= hi,
        )
    )
    like = st.sampled_from(WORDS).map(
        lambda w: Expr(
            f"b LIKE '{w[:2]}%'", lambda r, p=w[:2]: None if r[2] is None else r[2].startswith(p)
        )
    )
    return st.one_of(int_cmp, text_cmp, upper, is_null, in_list, between, like)


def _and(x: bool | None, y: bool | None) -> bool | None:
    if x is False or y is False:
        return False
    return None if x is None or y is None else True


def _or(x: bool | None, y: bool | None) -> bool | None:
    if x is True or y is True:
        return True
    return None if x is None or y is None else False


def expressions() -> st.SearchStrategy[Expr]:
    return st.recursive(
        atoms(),
        lambda inner: st.one_of(
            st.tuples(inner, inner).map(
                lambda t: Expr(
                    f"({t[0].sql}) AND ({t[1].sql})",
                    lambda r, x=t[0], y=t[1]: _and(x.eval(r), y.eval(r)),
                )
            ),
            st.tuples(inner, inner).map(
                lambda t: Expr(
                    f"({t[0].sql}) OR ({t[1].sql})",
                    lambda r, x=t[0], y=t[1]: _or(x.eval(r), y.eval(r)),
                )
            ),
            inner.map(
                lambda e: Expr(
                    f"NOT ({e.sql})",
                    lambda r, e=e: None if e.eval(r) is None else not e.eval(r),
                )
            ),
        ),
        max_leaves=6,
    )


def _ids(source: Source, where: str, table: TableRef) -> list[int]:
    plan = ReadPlan(table=table, fields=[FIELDS[0]], columns=FIELDS, where=where)
    return sorted(i for batch in source.read(plan, 1000) for i in batch.column(0).to_pylist())


@pytest.fixture(scope="module")
def sources(
    pg_factory: Any, mysql_factory: Any, tmp_path_factory: pytest.TempPathFactory
) -> list[tuple[Source, str]]:
    db: PgDatabase = pg_factory("egress_prop")
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE things (id int PRIMARY KEY, a int, b text, d int)")
        cur.executemany("INSERT INTO things VALUES (%s, %s, %s, %s)", DATA)
    path: Path = tmp_path_factory.mktemp("prop") / "things.db"
    policy = policy_for(path.parent)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE things (id INTEGER PRIMARY KEY, a INTEGER, b TEXT, d INTEGER)")
        conn.executemany("INSERT INTO things VALUES (?, ?, ?, ?)", DATA)
    pg = PostgresSource(
        PostgresSettings(host="127.0.0.1", port=5432, database=db.name, user="postgres"),
        {},
        policy,
    )
    mdb: MysqlDatabase = mysql_factory("egress_prop")
    with mdb.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE things (id INT PRIMARY KEY, a INT, b VARCHAR(20), d INT)")
        cur.executemany("INSERT INTO things VALUES (%s, %s, %s, %s)", DATA)
    my = MysqlSource(MysqlSettings(**mdb.settings), mdb.secrets, policy)  # type: ignore[arg-type]
    files = path.parent / "files"
    files.mkdir()
    pq.write_table(
        pa.Table.from_pylist(
            [dict(zip(("id", "a", "b", "d"), r, strict=True)) for r in DATA],
            schema=arrow_schema(FIELDS),
        ),
        files / "things.parquet",
    )
    return [
        (pg, TableRef("public", "things")),
        (SqliteSource(SqliteSettings(path=str(path)), {}, policy), TableRef("main", "things")),
        (my, TableRef(mdb.name, "things")),
        (
            FilesSource(FilesSettings(url=files.as_uri()), {}, policy),
            TableRef(None, "things.parquet"),
        ),
    ]


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(expr=expressions())
def test_where_clause_selects_what_python_selects(
    sources: list[tuple[Source, str]], expr: Expr
) -> None:
    want = sorted(r[0] for r in DATA if expr.eval(r) is True)
    for source, table in sources:
        assert _ids(source, expr.sql, table) == want, (type(source).__name__, expr.sql)
