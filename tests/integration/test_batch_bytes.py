"""Batches bounded by bytes as well as rows, on every source (issue 13, item 10): wide rows
come in batches of about EGRESS_BATCH_BYTES, never the whole row bound at once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.plan import ReadPlan
from egress.sources import Source
from egress.sources.arrow_types import byte_slices
from egress.sources.files import FilesSettings, FilesSource
from egress.sources.mysql import MysqlSettings, MysqlSource
from egress.sources.postgresql import PostgresSettings, PostgresSource
from egress.sources.sqlite import SqliteSettings, SqliteSource
from tests.conftest import MysqlDatabase, PgDatabase
from tests.support.policy import policy_for

ROWS = 400
WIDTH = 4000  # bytes of text per row
BOUND = 64 * 1024  # about 16 rows
FIELDS = [ColumnInfo("id", "int64"), ColumnInfo("body", "string")]
VALUES = [(i, chr(ord("a") + i % 26) * WIDTH) for i in range(ROWS)]


def _source(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Source, TableRef]:
    policy = policy_for(tmp_path)
    if kind == "postgresql":
        db: PgDatabase = request.getfixturevalue("pg_db")
        with db.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE wide (id bigint PRIMARY KEY, body text)")
            cur.executemany("INSERT INTO wide VALUES (%s, %s)", VALUES)
        settings = PostgresSettings(host="127.0.0.1", database=db.name, user="postgres")
        return PostgresSource(settings, {}, policy), TableRef("public", "wide")
    if kind == "mysql":
        mdb: MysqlDatabase = request.getfixturevalue("mysql_db")
        with mdb.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE wide (id BIGINT PRIMARY KEY, body TEXT)")
            cur.executemany("INSERT INTO wide VALUES (%s, %s)", VALUES)
        return MysqlSource(MysqlSettings(**mdb.settings), {}, policy), TableRef(mdb.name, "wide")  # type: ignore[arg-type]
    if kind == "sqlite":
        path = tmp_path / "wide.db"
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE wide (id INTEGER PRIMARY KEY, body TEXT)")
            conn.executemany("INSERT INTO wide VALUES (?, ?)", VALUES)
        return SqliteSource(SqliteSettings(path=str(path)), {}, policy), TableRef("main", "wide")
    folder = tmp_path / "lake"
    folder.mkdir()
    table = pa.table({"id": [v[0] for v in VALUES], "body": [v[1] for v in VALUES]})
    pq.write_table(table, folder / "wide.parquet")
    return FilesSource(FilesSettings(url=folder.as_uri()), {}, policy), TableRef(
        None, "wide.parquet"
    )


@pytest.mark.parametrize("kind", ["postgresql", "mysql", "sqlite"])
def test_database_sources_end_batches_at_the_byte_bound(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    source, table = _source(kind, request, tmp_path)
    batches = list(source.read(ReadPlan(table, FIELDS, FIELDS), 10_000, BOUND))
    assert [tuple(r.values()) for b in batches for r in b.to_pylist()] == VALUES
    assert len(batches) >= ROWS * WIDTH // (2 * BOUND)  # not one batch of 400 rows
    # At most one row past the bound (PostgreSQL: ADBC's own batches end at its hint).
    assert max(b.num_rows for b in batches) <= BOUND // WIDTH + 2


def test_files_batches_are_sliced_to_the_byte_bound_before_writing(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A Parquet row group comes as one scan batch; the runner slices it to the bound."""
    source, table = _source("files", request, tmp_path)
    scanned = list(source.read(ReadPlan(table, FIELDS, FIELDS), 10_000, BOUND))
    sliced = [s for b in scanned for s in byte_slices(b, BOUND)]
    assert [tuple(r.values()) for b in sliced for r in b.to_pylist()] == VALUES
    assert max(b.nbytes for b in sliced) <= BOUND + WIDTH + 16
