"""Parallel partitioned reads (``parallelism``): the rows of the single-session read, in every
format, from PostgreSQL (one exported snapshot) and MariaDB; a plan that cannot be partitioned
is read in one session and the run says why."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from egress.container import Container
from egress.db.migrate import upgrade
from egress.domain.catalog import ColumnInfo, TableRef
from egress.db.executions import RunRecord
from egress.domain.errors import Invalid
from egress.domain.paging import PageRequest
from egress.domain.plan import ReadPlan
from egress.domain.status import RunStatus
from egress.sources.policy import SourcePolicy
from egress.sources.postgresql import PostgresSettings, PostgresSource
from tests.conftest import PgDatabase, make_settings
from tests.integration.test_extract_types import PG_ROWS, PG_TABLE
from tests.support.factories import submitted_configuration

MORE_ROWS = 500  # beyond the edge rows: ranges with many rows each


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    settings = make_settings(tmp_path, max_parallelism=4)
    settings.ensure_data_dir()
    upgrade(settings.resolved_database_url)
    container = Container.build(settings)
    yield container
    container.engine.dispose()


@pytest.fixture
def pg(pg_db: PgDatabase) -> PgDatabase:
    with pg_db.connect() as conn, conn.cursor() as cur:
        cur.execute(PG_TABLE)
        cur.executemany(f"INSERT INTO everything VALUES ({', '.join(['%s'] * 19)})", PG_ROWS)
        cur.execute(
            "INSERT INTO everything (id, i4, t, n) SELECT g, g, 'row ' || g, g / 7.0"
            f" FROM generate_series(10, {MORE_ROWS + 9}) g"
        )
        cur.execute("CREATE TABLE nokey AS SELECT * FROM everything")
    return pg_db


def _pg(db: PgDatabase) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"}


class Source:
    """One connection's templates, run on this thread with any configuration."""

    def __init__(self, c: Container, kind: str, settings: dict[str, Any]) -> None:
        self.c, self.ws = c, c.workspaces.ensure_workspace("t")
        self.conn = c.connections.create(self.ws, kind, kind, settings, None)
        c.services.catalog.discover(self.ws, self.conn.id)
        self.runs = 0

    def run(self, table: str, fmt: str, **overrides: Any) -> tuple[RunRecord, bytes]:
        c = self.c
        tpl = next(
            t
            for t in c.templates.list_page(self.ws, self.conn.id, PageRequest(0, 100)).items
            if t.name == table or t.name.endswith(f".{table}")
        )
        self.runs += 1
        cfg_id = submitted_configuration(
            c, self.ws, tpl.id, f"cfg{self.runs}", format=fmt, **overrides
        )
        ex, _ = c.services.executions.trigger(self.ws, cfg_id, {})
        assert c.worker().run_once()
        run = c.executions.get(self.ws, cfg_id, ex.id).latest
        data = b"".join(c.storage.stream(run.files[0].storage_key)) if run.files else b""
        return run, data


def _rows(fmt: str, data: bytes) -> Counter[str]:
    """The file's rows as a multiset of comparable texts (the header left out)."""
    if fmt == "csv":
        return Counter(json.dumps(r) for r in list(csv.reader(io.StringIO(data.decode())))[1:])
    if fmt == "jsonl":
        return Counter(data.decode().splitlines())
    table = pq.read_table(io.BytesIO(data))
    return Counter(json.dumps(r, default=repr, sort_keys=True) for r in table.to_pylist())


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_postgres_parallel_read_holds_exactly_the_rows_of_the_serial_read(
    c: Container, pg: PgDatabase, fmt: str
) -> None:
    source = Source(c, "postgresql", _pg(pg))
    serial, one = source.run("everything", fmt)
    run, data = source.run("everything", fmt, parallelism=3)
    assert run.status is RunStatus.COMPLETED and run.warnings == []
    assert run.record_count == serial.record_count == len(PG_ROWS) + MORE_ROWS
    assert len(run.files) == 1 and _rows(fmt, data) == _rows(fmt, one)
