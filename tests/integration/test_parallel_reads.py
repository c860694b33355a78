"""Parallel partitioned reads (``parallelism``): the rows of the single-session read, in every
format, from PostgreSQL (one exported snapshot) and MariaDB; a plan that cannot be partitioned
is read in one session and the run says why."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from egress.container import Container
from egress.db.executions import RunRecord
from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.errors import Invalid
from egress.domain.paging import PageRequest
from egress.domain.plan import ReadPlan
from egress.domain.status import RunStatus
from egress.engine.faults import is_transient
from egress.engine.read_ahead import read_ahead
from egress.sources import SourceError, open_source
from egress.sources.base import PartitionedSource
from egress.sources.mysql import raw
from egress.sources.mysql.source import NO_CLIENT_LIBRARY
from egress.sources.mysql.transactions import NO_RELOAD
from tests.conftest import MysqlDatabase, PgDatabase, make_settings
from tests.integration.test_extract_types import MYSQL_TABLE, PG_ROWS, PG_TABLE, TRICKY
from tests.support.factories import configuration_values, submitted_configuration
from tests.support.migrated import migrate
from tests.support.policy import files_root, policy_for

MORE_ROWS = 500  # beyond the edge rows: ranges with many rows each
# ``everything``'s ids in two ranges.
TWO_RANGES = ReadPlan(
    table=TableRef("public", "everything"),
    fields=[ColumnInfo("id", "int64")],
    parallelism=2,
    partition_key="id",
)


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    settings = make_settings(tmp_path, max_parallelism=4)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
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

    def __init__(
        self,
        c: Container,
        kind: str,
        settings: dict[str, Any],
        secrets: dict[str, str] | None = None,
    ) -> None:
        self.c, self.ws = c, c.workspaces.ensure_workspace("t")
        sealed = c.secret_box.seal(secrets) if secrets else None
        self.conn = c.connections.create(self.ws, kind, kind, settings, sealed)
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


def test_a_table_without_a_usable_key_is_read_in_one_session_and_the_run_says_so(
    c: Container, pg: PgDatabase
) -> None:
    source = Source(c, "postgresql", _pg(pg))
    _serial, one = source.run("nokey", "parquet")
    run, data = source.run("nokey", "parquet", parallelism=2)
    assert run.status is RunStatus.COMPLETED and _rows("parquet", data) == _rows("parquet", one)
    assert run.warnings == [
        "parallelism 2: read in one session, as the template has no one-column integer "
        "primary key to cut into ranges"
    ]


def test_filters_and_incremental_windows_apply_to_every_partition(
    c: Container, pg: PgDatabase
) -> None:
    source = Source(c, "postgresql", _pg(pg))
    tpl = c.services.catalog.create_custom_template(
        source.ws, source.conn.id, "inc", "public.everything", None, ["id"], "id", None
    )
    cfg = submitted_configuration(
        c, source.ws, tpl.id, "inc", format="csv", parallelism=2, filter="i4 >= 100"
    )

    def run() -> list[int]:
        ex, _ = c.services.executions.trigger(source.ws, cfg, {"extractOnlyNew": True})
        assert c.worker().run_once()
        latest = c.executions.get(source.ws, cfg, ex.id).latest
        assert latest.status is RunStatus.COMPLETED and latest.warnings == []
        data = b"".join(c.storage.stream(latest.files[0].storage_key)).decode()
        return sorted(int(r["id"]) for r in csv.DictReader(io.StringIO(data)))

    assert run() == [1, *range(100, MORE_ROWS + 10)]  # row 1's i4 is 2147483647
    with pg.connect() as conn:
        conn.execute("INSERT INTO everything (id, i4) VALUES (5000, 1), (5001, 500), (5002, 7)")
    assert run() == [5001]


def test_rows_written_after_the_snapshot_reach_no_partition(tmp_path: Path, pg: PgDatabase) -> None:
    """Writers between the sessions' start and their reads change nothing they deliver:
    every partition reads the one exported snapshot."""
    src = open_source("postgresql", _pg(pg), {}, policy_for(tmp_path))
    assert isinstance(src, PartitionedSource)
    fields = [ColumnInfo("id", "int64"), ColumnInfo("t", "string")]
    plan = ReadPlan(
        table=TableRef("public", "everything"),
        fields=fields,
        parallelism=3,
        partition_key="id",
    )
    before = {(r["id"], r["t"]) for b in src.read(plan, 1000) for r in b.to_pylist()}
    streams = src.read_partitions(plan, 50)
    assert len(streams) == 3
    with pg.connect() as conn:
        conn.execute("DELETE FROM everything WHERE id BETWEEN 10 AND 200")
        conn.execute("UPDATE everything SET t = 'changed' WHERE id > 200")
        conn.execute("INSERT INTO everything (id, t) VALUES (100000, 'new'), (-5, 'new')")
    got = [(r["id"], r["t"]) for s in streams for b in s for r in b.to_pylist()]
    src.close()
    assert len(got) == len(before) and set(got) == before


def test_parallelism_beyond_the_maximum_is_refused(c: Container, pg: PgDatabase) -> None:
    source = Source(c, "postgresql", _pg(pg))
    tpl = c.services.catalog.create_custom_template(
        source.ws, source.conn.id, "big", "public.everything", None, ["id"], None, None
    )
    with pytest.raises(Invalid, match="EGRESS_MAX_PARALLELISM") as exc:
        c.services.configurations.create(
            source.ws, configuration_values(tpl.id, "wide", parallelism=5)
        )
    assert [e.loc for e in exc.value.errors] == [("body", "parallelism")]


@pytest.fixture
def maria(mysql_db: MysqlDatabase) -> MysqlDatabase:
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute(MYSQL_TABLE)
        cur.execute(
            "INSERT INTO everything VALUES (1, 1, -5, 4000000000, 18446744073709551615, 1.5,"
            " -2.25e100, -1234567890.12, %s, '', '1000-01-01', '23:59:59.999999',"
            " '2026-05-28 14:00:00.123456', '2026-05-28 18:00:00', X'0001FF', b'1', 'b')",
            (TRICKY,),
        )
        cur.execute("INSERT INTO everything (id, b, bt) VALUES (2, 0, b'0'), (3, NULL, NULL)")
        cur.executemany(
            "INSERT INTO everything (id, i, s, n) VALUES (%s, %s, %s, %s)",
            [(i, i, f"row {i}", i / 7) for i in range(10, MORE_ROWS + 10)],
        )
    return mysql_db


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_mariadb_with_reload_reads_in_parallel_the_rows_of_the_serial_read(
    c: Container, maria: MysqlDatabase, fmt: str
) -> None:
    source = Source(c, "mysql", maria.settings)
    serial, one = source.run("everything", fmt)
    run, data = source.run("everything", fmt, parallelism=3)
    assert run.status is RunStatus.COMPLETED and run.warnings == [], run.error_message
    assert run.record_count == serial.record_count == 3 + MORE_ROWS
    assert _rows(fmt, data) == _rows(fmt, one)


def test_mariadb_without_reload_reads_in_one_session_and_says_so(
    c: Container, maria: MysqlDatabase
) -> None:
    settings, secrets = maria.user("PROCESS")
    try:
        source = Source(c, "mysql", settings, secrets)
        _serial, one = source.run("everything", "parquet")
        run, data = source.run("everything", "parquet", parallelism=2)
    finally:
        maria.drop_user(settings)
    assert run.status is RunStatus.COMPLETED and _rows("parquet", data) == _rows("parquet", one)
    assert run.warnings == [f"parallelism 2: read in one session, as {NO_RELOAD}"]


def test_mariadb_without_libmysqlclient_reads_in_one_session_and_says_so(
    c: Container, maria: MysqlDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyMySQL's sessions in parallel would only add Python work: the read stays serial."""
    monkeypatch.setattr(raw, "AVAILABLE", False)
    source = Source(c, "mysql", maria.settings)
    _serial, one = source.run("everything", "csv")
    run, data = source.run("everything", "csv", parallelism=2)
    assert run.status is RunStatus.COMPLETED and _rows("csv", data) == _rows("csv", one)
    assert run.warnings == [f"parallelism 2: read in one session, as {NO_CLIENT_LIBRARY}"]


def test_sqlite_is_read_in_one_session_and_the_run_says_so(c: Container, tmp_path: Path) -> None:
    path = files_root(tmp_path) / "shop.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        db.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"n{i}") for i in range(100)])
    run, data = Source(c, "sqlite", {"path": str(path)}).run("t", "csv", parallelism=2)
    assert run.status is RunStatus.COMPLETED and len(_rows("csv", data)) == 100
    assert run.warnings == [
        "parallelism 2: read in one session, as this type of source has no parallel reads"
    ]


def test_losing_the_session_that_holds_the_snapshot_fails_every_partition_for_a_retry(
    tmp_path: Path, pg: PgDatabase
) -> None:
    """The snapshot's own session dies before the reads: the read fails (no partition
    delivers a partial answer) with a failure the worker retries as a whole."""
    src = open_source("postgresql", _pg(pg), {}, policy_for(tmp_path))
    assert isinstance(src, PartitionedSource)
    streams = src.read_partitions(TWO_RANGES, 50)
    with pg.connect() as conn:
        killed = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND query LIKE '%pg_export_snapshot%'"
        ).fetchall()
    assert killed == [(True,)]
    with pytest.raises(SourceError) as exc:
        list(read_ahead(streams, contextlib.nullcontext, depth=2))
    src.close()
    assert is_transient(exc.value)


def test_mariadb_rows_written_after_the_sessions_start_reach_no_partition(
    tmp_path: Path, maria: MysqlDatabase
) -> None:
    src = open_source("mysql", maria.settings, maria.secrets, policy_for(tmp_path))
    assert isinstance(src, PartitionedSource)
    plan = ReadPlan(
        table=TableRef(maria.name, "everything"),
        fields=[ColumnInfo("id", "int64"), ColumnInfo("s", "string")],
        parallelism=3,
        partition_key="id",
    )
    before = {(r["id"], r["s"]) for b in src.read(plan, 1000) for r in b.to_pylist()}
    streams = src.read_partitions(plan, 50)
    assert len(streams) == 3
    with maria.connect() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM everything WHERE id BETWEEN 10 AND 200")
        cur.execute("UPDATE everything SET s = 'changed' WHERE id > 200")
        cur.execute("INSERT INTO everything (id, s) VALUES (100000, 'new'), (-5, 'new')")
        conn.commit()
    got = [(r["id"], r["s"]) for s in streams for b in s for r in b.to_pylist()]
    assert len(got) == len(before) and set(got) == before


NULL_KEY_VIEW = (
    "CREATE VIEW nullkeys AS SELECT CASE WHEN id % 10 = 0 THEN NULL ELSE id END AS k, id AS i"
    " FROM everything"
)


@pytest.mark.parametrize(
    ("kind", "fmt"), [("pg", "csv"), ("pg", "jsonl"), ("pg", "parquet"), ("maria", "csv")]
)
def test_rows_whose_declared_key_is_null_are_read_by_the_first_partition(
    c: Container, request: pytest.FixtureRequest, kind: str, fmt: str
) -> None:
    """A custom template's key over a view may be NULL: no key range holds those rows, which a
    parallel run dropped (COMPLETED with 90 of 100 rows). The first range now takes them."""
    db = request.getfixturevalue(kind)
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute(NULL_KEY_VIEW)
    source = Source(c, "postgresql", _pg(db)) if kind == "pg" else Source(c, "mysql", db.settings)
    names = [t.qualified_name for t in c.services.catalog.discover(source.ws, source.conn.id)]
    table = next(n for n in names if n.endswith(".nullkeys"))
    tpl = c.services.catalog.create_custom_template(
        source.ws, source.conn.id, "keyed_view", table, None, ["k"], None, None
    )
    serial, one = source.run(tpl.name, fmt)
    run, data = source.run(tpl.name, fmt, parallelism=3)
    assert run.status is RunStatus.COMPLETED and run.warnings == [], run.error_message
    assert (
        run.record_count == serial.record_count == (len(PG_ROWS) if kind == "pg" else 3) + MORE_ROWS
    )
    assert _rows(fmt, data) == _rows(fmt, one)
    assert _null_keys(fmt, data) == 50  # ids 10, 20, …, 500


def _null_keys(fmt: str, data: bytes) -> int:
    if fmt == "csv":
        return sum(1 for r in csv.DictReader(io.StringIO(data.decode())) if r["k"] == "")
    if fmt == "jsonl":
        return sum(1 for line in data.decode().splitlines() if json.loads(line)["k"] is None)
    return pq.read_table(io.BytesIO(data)).column("k").null_count
