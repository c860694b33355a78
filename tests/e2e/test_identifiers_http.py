"""Qualified names kept as parts, and values never read out of SQL text (issue 13, items 7, 9).

Schemas, tables and columns whose names hold dots, quotes, spaces, ``%``, ``%(p0)s``, ``:p0``
and ``?``, and literals holding the same, on PostgreSQL, MariaDB/MySQL and SQLite: listing
templates never collides, every run reads the table it names and returns the source's values
untouched, and a filter value never leaves its literal.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from tests.conftest import MysqlDatabase, PgDatabase, wait_for_status
from tests.e2e.helpers import API, CONFIGS, DONE, configuration, problem

# Every name a placeholder scheme or a naive dot split could misread.
COLUMNS = ["id", "a.b", 'q"uote', "sp ace", "pct%", "%(p0)s", ":p0", "?", "p:p0"]
ROWS = [
    (1, "a.b", 'say "hi"', "x y", "50%", "%(p0)s", ":p0", "?", "p:p0"),
    (2, "c.d", "it's", "x  y", "5%", "p0", "p0", "!", "p:p1"),
    (3, "e", "\\", "z", "%", "%s", ":p1", "??", "%%"),
]
# Matches row 1 only; every literal holds a placeholder lookalike.
WHERE = """"pct%" = '50%' AND "%(p0)s" = '%(p0)s' AND ":p0" = ':p0' AND "?" = '?'"""
# A literal in the template's own text, and a filter value that would close it if the two
# were ever merged by text substitution.
TAG = "rate %(p0)s :p0 ? %s"
BREAKOUT = "' OR 1=1 OR 'x' = '"


def _connection(http: httpx.Client, name: str, kind: str, settings: dict[str, Any]) -> str:
    r = http.post(f"{API}/connections", json={"name": name, "type": kind, "settings": settings})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _templates(http: httpx.Client, connection: str) -> dict[str, dict[str, Any]]:
    r = http.get(f"{API}/templates", params={"connectionId": connection, "limit": 100})
    assert r.status_code == 200, r.text
    return {t["name"]: t for t in r.json()["data"]}


def _run(http: httpx.Client, template_id: str, name: str, **options: Any) -> list[list[str]]:
    cfg = configuration(http, template_id, name)
    r = http.post(f"{CONFIGS}/{cfg}/executions", json=options or None)
    assert r.status_code == 202, r.text
    details = wait_for_status(http, cfg, r.json()["id"], DONE)
    assert details["latestStatus"] in ("COMPLETED", "COMPLETED_NO_DATA"), details
    if details["latestStatus"] == "COMPLETED_NO_DATA":
        return []
    text = http.get(details["runs"][0]["file"]["downloadUrl"]).text  # type: ignore[index]
    return list(csv.reader(io.StringIO(text)))


def _pg_settings(db: PgDatabase) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"}


def _pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _expected(rows: list[tuple[Any, ...]]) -> list[list[str]]:
    return [COLUMNS] + [[str(v) for v in row] for row in rows]


# ------------------------------------------------------------------ PostgreSQL


def test_a_dotted_schema_and_a_dotted_table_are_two_templates_reading_their_own_rows(
    http: httpx.Client, pg_db: PgDatabase
) -> None:
    with pg_db.connect() as conn:
        conn.execute('CREATE SCHEMA "x.y"')
        conn.execute("CREATE SCHEMA x")
        conn.execute('CREATE TABLE "x.y".z (id int PRIMARY KEY, src text)')
        conn.execute('CREATE TABLE x."y.z" (id int PRIMARY KEY, src text)')
        conn.execute("""INSERT INTO "x.y".z VALUES (1, 'schema x.y, table z')""")
        conn.execute("""INSERT INTO x."y.z" VALUES (2, 'schema x, table y.z')""")
    conn_id = _connection(http, "dots", "postgresql", _pg_settings(pg_db))

    listed = _templates(http, conn_id)  # was 500: both were named "x.y.z"
    first, second = listed['"x.y".z'], listed['x."y.z"']
    assert (first["schema"], first["tableName"], first["table"]) == ("x.y", "z", '"x.y".z')
    assert (second["schema"], second["tableName"]) == ("x", "y.z")
    assert _templates(http, conn_id).keys() == listed.keys()  # listing again changes nothing

    assert _run(http, first["id"], "dots_1") == [["id", "src"], ["1", "schema x.y, table z"]]
    assert _run(http, second["id"], "dots_2") == [["id", "src"], ["2", "schema x, table y.z"]]

    # A custom template names its table by the listed form, or by its parts.
    by_parts = http.post(
        f"{API}/templates",
        json={"connectionId": conn_id, "name": "by parts", "schema": "x.y", "table": "z"},
    )
    assert by_parts.status_code == 201, by_parts.text
    assert (by_parts.json()["schema"], by_parts.json()["tableName"]) == ("x.y", "z")
    listed_form = http.post(
        f"{API}/templates",
        json={"connectionId": conn_id, "name": "listed form", "table": 'x."y.z"'},
    )
    assert listed_form.status_code == 201, listed_form.text
    assert _run(http, listed_form.json()["id"], "dots_3")[1] == ["2", "schema x, table y.z"]
    body = problem(
        http.post(
            f"{API}/templates",
            json={"connectionId": conn_id, "name": "joined", "table": "x.y.z"},
        ),
        422,
        "table",
    )
    assert "no table or view 'x.y.z'" in body["detail"]


def _pg_weird(db: PgDatabase) -> tuple[str, str]:
    """A schema and a table with a quote, a space, a dot, '%' and ':p0' in their names."""
    schema, table = 'we"ird sch.ema%', "t:p0 ?"
    cols = ", ".join(
        f"{_pg_ident(c)} {'int PRIMARY KEY' if c == 'id' else 'text'}" for c in COLUMNS
    )
    target = sql.Identifier(schema, table)
    with db.connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(target, sql.SQL(cols)))
        # $n placeholders: psycopg's %s would read the names' '%' as placeholders.
        with psycopg.RawCursor(conn) as cur:
            insert = sql.SQL("INSERT INTO {} VALUES ({})").format(
                target, sql.SQL(", ").join(sql.SQL(f"${i + 1}") for i in range(len(COLUMNS)))
            )
            cur.executemany(insert, ROWS)
    return schema, table


def _mysql_weird(db: MysqlDatabase) -> str:
    table = "t:p0 ?%"
    cols = ", ".join(f"`{c}` {'INT PRIMARY KEY' if c == 'id' else 'VARCHAR(40)'}" for c in COLUMNS)
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{table}` ({cols})")
        # PyMySQL formats with %: the table name's '%' doubled for this one statement.
        cur.executemany(
            f"INSERT INTO `{table.replace('%', '%%')}` VALUES ({', '.join(['%s'] * len(COLUMNS))})",
            ROWS,
        )
    return table


def _sqlite_weird(path: Any) -> str:
    table = "t.x:p0 ?%"
    cols = ", ".join(
        f"{_pg_ident(c)} {'INTEGER PRIMARY KEY' if c == 'id' else 'TEXT'}" for c in COLUMNS
    )
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE {_pg_ident(table)} ({cols})")
        conn.executemany(
            f"INSERT INTO {_pg_ident(table)} VALUES ({', '.join(['?'] * len(COLUMNS))})", ROWS
        )
    return table


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def weird(
    request: pytest.FixtureRequest, http: httpx.Client, tmp_path: Any
) -> tuple[str, str, str, str]:
    """(connection id, the weird table's template name, its query quoting, dialect)."""
    kind = request.param
    if kind == "postgresql":
        db: PgDatabase = request.getfixturevalue("pg_db")
        schema, table = _pg_weird(db)
        conn_id = _connection(http, f"weird_{db.name}", kind, _pg_settings(db))
        name = f'"{schema.replace(chr(34), chr(34) * 2)}".{table}'
        return conn_id, name, f"{_pg_ident(schema)}.{_pg_ident(table)}", '"'
    if kind == "mysql":
        mdb: MysqlDatabase = request.getfixturevalue("mysql_factory")("egress.dot")
        table = _mysql_weird(mdb)
        conn_id = _connection(http, f"weird_{mdb.name}", kind, dict(mdb.settings))
        return conn_id, f'"{mdb.name}".{table}', f"`{table}`", "`"
    path = tmp_path / "weird.db"
    table = _sqlite_weird(path)
    conn_id = _connection(http, f"weird_{tmp_path.name}", kind, {"path": str(path)})
    return conn_id, f'main."{table}"', _pg_ident(table), '"'


def test_odd_names_and_placeholder_lookalikes_read_exactly_the_source_values(
    http: httpx.Client, weird: tuple[str, str, str, str]
) -> None:
    conn_id, name, _, _ = weird
    template = _templates(http, conn_id)[name]
    assert [f["name"] for f in template["fields"]] == COLUMNS
    assert _run(http, template["id"], f"all {name}") == _expected(ROWS)
    assert _run(http, template["id"], f"one {name}", whereClause=WHERE) == _expected(ROWS[:1])
    # A value that would close its literal is only ever a value: it matches nothing.
    none = _run(http, template["id"], f"none {name}", whereClause=f'"sp ace" = {_sql(BREAKOUT)}')
    assert none == []


def test_a_sql_template_literal_is_never_a_placeholder(
    http: httpx.Client, weird: tuple[str, str, str, str]
) -> None:
    conn_id, name, table_sql, q = weird
    query = f"SELECT {q}id{q}, '{TAG}' AS tag, {q}:p0{q} AS {q}p:p0{q} FROM {table_sql}"
    r = http.post(
        f"{API}/templates",
        json={"connectionId": conn_id, "name": f"tagged {name}", "query": query},
    )
    assert r.status_code == 201, r.text
    tpl = r.json()["id"]
    assert _run(http, tpl, f"tag {name}", whereClause="id = 1") == [
        ["id", "tag", "p:p0"],
        ["1", TAG, ":p0"],
    ]
    # The filter value that would break out of 'rate …' under text substitution.
    assert _run(http, tpl, f"tag2 {name}", whereClause=f"tag = {_sql(BREAKOUT)}") == []
    assert _run(http, tpl, f"tag3 {name}", whereClause=f'"p:p0" = {_sql(":p1")}') == [
        ["id", "tag", "p:p0"],
        ["3", TAG, ":p1"],
    ]


def _sql(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
