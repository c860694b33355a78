"""A table's key as its source enforces it: the PRIMARY KEY, else the shortest UNIQUE key over
NOT NULL columns; a UNIQUE key over a nullable column, or a partial one, is none. The same on
PostgreSQL, MySQL/MariaDB and SQLite (what bulk export pages by)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from egress.domain.catalog import TableInfo
from egress.sources.mysql import MysqlSettings, MysqlSource
from egress.sources.postgresql import PostgresSettings, PostgresSource
from egress.sources.sqlite import SqliteSettings, SqliteSource
from tests.conftest import MysqlDatabase, PgDatabase
from tests.support.policy import policy_for

TABLES = [
    "CREATE TABLE pk (id int PRIMARY KEY, u int UNIQUE NOT NULL)",
    "CREATE TABLE un (a int NOT NULL, b int NOT NULL, c int NOT NULL, UNIQUE (a, b), UNIQUE (c))",
    "CREATE TABLE nul (a int UNIQUE, b int)",
    "CREATE TABLE plain (a int NOT NULL, b int)",
]
EXPECTED = {"pk": ["id"], "un": ["c"], "nul": [], "plain": []}


def _keys(tables: list[TableInfo]) -> dict[str, list[str]]:
    return {t.name: t.primary_key for t in tables}


def test_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    with sqlite3.connect(path) as db:
        for ddl in TABLES:
            db.execute(ddl)
        db.execute("CREATE UNIQUE INDEX plain_a ON plain (a) WHERE b > 0")  # partial: no key
    source = SqliteSource(SqliteSettings(path=str(path)), {}, policy_for(tmp_path))
    assert _keys(source.catalog()) == EXPECTED


def test_postgresql(tmp_path: Path, pg_db: PgDatabase) -> None:
    with pg_db.connect() as conn:
        for ddl in TABLES:
            conn.execute(ddl)  # type: ignore[arg-type]
        conn.execute("CREATE UNIQUE INDEX plain_a ON plain (a) WHERE b > 0")
    settings = PostgresSettings(host="127.0.0.1", port=5432, database=pg_db.name, user="postgres")
    assert _keys(PostgresSource(settings, {}, policy_for(tmp_path)).catalog()) == EXPECTED


def test_mysql(tmp_path: Path, mysql_db: MysqlDatabase) -> None:
    with mysql_db.connect() as conn, conn.cursor() as cur:
        for ddl in TABLES:
            cur.execute(ddl)
    settings = MysqlSettings.model_validate(mysql_db.settings)
    source = MysqlSource(settings, mysql_db.secrets, policy_for(tmp_path))
    assert _keys(source.catalog()) == EXPECTED
