"""The sources' estimates of the rows a run reads (``progress.estimatedTotal``): PostgreSQL's
planner and MySQL/MariaDB's optimizer, asked with EXPLAIN; filters count on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.plan import ReadPlan
from egress.sources.base import RowEstimates
from egress.sources.mysql import MysqlSettings, MysqlSource
from egress.sources.postgresql import PostgresSettings, PostgresSource
from egress.sources.sqlite import SqliteSource
from tests.conftest import MysqlDatabase, PgDatabase
from tests.support.policy import policy_for

ROWS = 2000
ID = [ColumnInfo("id", "int64")]


def test_postgresql_estimates_with_the_runs_filter(pg_db: PgDatabase, tmp_path: Path) -> None:
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY)")
        conn.execute(f"INSERT INTO items SELECT g FROM generate_series(1, {ROWS}) g")
        conn.execute("ANALYZE items")
    settings = PostgresSettings(host="127.0.0.1", port=5432, database=pg_db.name, user="postgres")
    source = PostgresSource(settings, {}, policy_for(tmp_path))
    assert isinstance(source, RowEstimates)
    whole = ReadPlan(TableRef("public", "items"), ID, ID)
    assert source.estimate_rows(whole) == ROWS
    some = source.estimate_rows(ReadPlan(TableRef("public", "items"), ID, ID, where="id <= 100"))
    assert some is not None and 50 <= some <= 200
    query = ReadPlan(None, ID, ID, query="SELECT g AS id FROM generate_series(1, 12345) g")
    assert source.estimate_rows(query) == 12345


def test_mysql_estimates_a_table(mysql_db: MysqlDatabase, tmp_path: Path) -> None:
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE items (id int PRIMARY KEY)")
        cur.executemany("INSERT INTO items VALUES (%s)", [(i,) for i in range(1, ROWS + 1)])
        cur.execute("ANALYZE TABLE items")
    settings = MysqlSettings(**mysql_db.settings)  # type: ignore[arg-type]
    source = MysqlSource(settings, mysql_db.secrets, policy_for(tmp_path))
    estimate = source.estimate_rows(ReadPlan(TableRef(mysql_db.name, "items"), ID, ID))
    assert estimate is not None and ROWS / 2 <= estimate <= ROWS * 2


def test_sqlite_has_no_estimate() -> None:
    assert not issubclass(SqliteSource, RowEstimates)
