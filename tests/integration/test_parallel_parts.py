"""A parallel read written in parts (``engine/parts.py``): each partition encodes its own part
(PostgreSQL's CSV: its own ``COPY``) and the file is the parts concatenated — the single
stream's header and rows (in key-range order), gzip as one member per part; a part that fails
or a cancel publishes nothing."""

from __future__ import annotations

import csv
import gzip
import io
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from egress.container import Container
from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.plan import ReadPlan
from egress.domain.status import RunStatus
from egress.engine.control import RunControl
from egress.engine.faults import is_transient
from egress.engine.parts import write_parts
from egress.sources import SourceError, open_source
from egress.sources.base import Rendering
from egress.sources.postgresql import copy_parts
from egress.sources.postgresql.source import PostgresSource
from tests.conftest import MysqlDatabase, PgDatabase
from tests.integration.test_extract_types import PG_ROWS
from tests.integration.test_parallel_reads import (
    MORE_ROWS,
    TWO_RANGES,
    Source,
    _pg,
    _rows,
    c,
    maria,
    pg,
)
from tests.support.factories import submitted_configuration
from tests.support.policy import policy_for

__all__ = ["c", "maria", "pg"]  # the fixtures, shared with test_parallel_reads

# Some of ``everything``'s columns, all of them on the COPY path.
COPY_FIELDS = ["id", "i2", "i4", "i8", "b", "t", "v", "dt", "ts", "tz"]
ROWS = len(PG_ROWS) + MORE_ROWS


def _header_and_rows(data: bytes) -> tuple[str, Counter[str]]:
    text = data.decode()
    return text.splitlines()[0], _rows("csv", data)


def _spy_copy_parts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many parts each parallel COPY was cut into."""
    calls: list[int] = []
    real = PostgresSource.copy_partitions

    def spy(self: PostgresSource, *args: Any, **kwargs: Any) -> Any:
        parts = real(self, *args, **kwargs)
        calls.append(len(parts))
        return parts

    monkeypatch.setattr(PostgresSource, "copy_partitions", spy)
    return calls


@pytest.mark.parametrize("dialect", [None, "postgres"])
@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_postgres_csv_parts_are_each_a_copy_and_concatenate_to_the_single_stream(
    c: Container,
    pg: PgDatabase,
    monkeypatch: pytest.MonkeyPatch,
    dialect: str | None,
    compression: str,
) -> None:
    source = Source(c, "postgresql", _pg(pg))
    options: dict[str, Any] = {"fields": COPY_FIELDS, "compression": compression}
    if dialect:
        options["csv_dialect"] = dialect
    serial, one = source.run("everything", "csv", **options)
    calls = _spy_copy_parts(monkeypatch)
    run, data = source.run("everything", "csv", parallelism=3, **options)
    assert calls == [3]
    assert run.status is RunStatus.COMPLETED and run.warnings == [], run.error_message
    assert run.record_count == serial.record_count == ROWS
    if compression == "gzip":  # one member per part: still one gzip stream
        one, data = gzip.decompress(one), gzip.decompress(data)
    assert _header_and_rows(data) == _header_and_rows(one)
    assert data.count(one.splitlines()[0]) == 1  # the header once


def test_postgres_jsonl_parts_are_each_a_copy_and_concatenate_to_the_single_stream(
    c: Container, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server renders each range's JSON lines: the parts hold the single stream's lines."""
    source = Source(c, "postgresql", _pg(pg))
    serial, one = source.run("everything", "jsonl", fields=COPY_FIELDS)
    calls = _spy_copy_parts(monkeypatch)
    run, data = source.run("everything", "jsonl", fields=COPY_FIELDS, parallelism=3)
    assert calls == [3]
    assert run.status is RunStatus.COMPLETED and run.warnings == [], run.error_message
    assert run.record_count == serial.record_count == ROWS
    assert _rows("jsonl", data) == _rows("jsonl", one)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_array_columns_in_copy_parts_hold_exactly_the_rows_of_the_serial_read(
    c: Container, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """Arrays rendered element by element in SQL (floats, timestamps, bytea) and by
    ``array_to_json`` (text), in each range's own COPY: the single stream's rows."""
    with pg.connect() as conn:
        conn.execute(
            "CREATE TABLE arrays AS SELECT g AS id,"
            " ARRAY[g * 0.5, 1e15, 'NaN', NULL]::float8[] AS f,"
            " ARRAY[timestamp '2026-01-01' + g * interval '1.5 second', NULL] AS ts,"
            " ARRAY[decode(md5(g::text), 'hex')] AS b, ARRAY['a,\"' || g, NULL] AS t"
            " FROM generate_series(1, 300) g"
        )
        conn.execute("ALTER TABLE arrays ADD PRIMARY KEY (id)")
    source = Source(c, "postgresql", _pg(pg))
    calls = _spy_copy_parts(monkeypatch)
    serial, one = source.run("arrays", fmt)
    run, data = source.run("arrays", fmt, parallelism=3)
    assert calls == [3]
    assert run.status is RunStatus.COMPLETED and run.warnings == [], run.error_message
    assert run.record_count == serial.record_count == 300
    assert _rows(fmt, data) == _rows(fmt, one)
    assert '[150.0,1000000000000000.0,"NaN",null]' in data.decode().replace('""', '"')


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_arrow_parts_in_gzip_hold_exactly_the_rows_of_the_serial_read(
    c: Container, pg: PgDatabase, fmt: str
) -> None:
    source = Source(c, "postgresql", _pg(pg))
    serial, one = source.run("everything", fmt, compression="gzip")
    run, data = source.run("everything", fmt, compression="gzip", parallelism=2)
    assert run.status is RunStatus.COMPLETED and run.record_count == serial.record_count == ROWS
    one, data = gzip.decompress(one), gzip.decompress(data)
    assert _rows(fmt, data) == _rows(fmt, one)
    if fmt == "csv":
        assert one.splitlines()[0] == data.splitlines()[0]


def test_mariadb_jsonl_parts_hold_exactly_the_rows_of_the_serial_read(
    c: Container, maria: MysqlDatabase
) -> None:
    source = Source(c, "mysql", maria.settings)
    _serial, one = source.run("everything", "jsonl")
    run, data = source.run("everything", "jsonl", parallelism=3)
    assert run.status is RunStatus.COMPLETED and run.warnings == [], run.error_message
    assert _rows("jsonl", data) == _rows("jsonl", one)


def test_a_failing_part_fails_the_run_and_publishes_nothing(
    c: Container, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later part fails after writing some rows: the first part stops too, the run fails
    with that part's error, and no file (final or temporary) is left."""
    real = copy_parts.copy_rendered

    def failing(*args: Any, header: bool, **kwargs: Any) -> Any:
        if header:
            return real(*args, header=header, **kwargs)
        args[3].write(b"1,partial\n")
        raise SourceError("the second range broke")

    monkeypatch.setattr(copy_parts, "copy_rendered", failing)
    source = Source(c, "postgresql", _pg(pg))
    run, data = source.run("everything", "csv", fields=COPY_FIELDS, parallelism=2)
    assert run.status is RunStatus.FAILED and run.error_message == "the second range broke"
    assert run.files == [] and data == b""
    assert [o.key for o in c.storage.list()] == []


def test_a_cancel_stops_every_part_and_publishes_nothing(c: Container, pg: PgDatabase) -> None:
    with pg.connect() as conn:
        # 5 ms of sleep every 100 rows in each range: the run lasts seconds.
        conn.execute(
            "CREATE VIEW slow AS SELECT g AS id,"
            " CASE WHEN g % 100 = 0 THEN pg_sleep(0.005)::text END AS pause"
            " FROM generate_series(1, 60000) g"
        )
    source = Source(c, "postgresql", _pg(pg))
    tpl = c.services.catalog.create_custom_template(
        source.ws, source.conn.id, "slowkey", "public.slow", None, ["id"], None, None
    )
    cfg = submitted_configuration(c, source.ws, tpl.id, "slow", parallelism=2)
    ex, _ = c.services.executions.trigger(source.ws, cfg, {})
    worker = threading.Thread(target=c.worker().run_once)
    worker.start()
    deadline = time.monotonic() + 30
    while (c.executions.get(source.ws, cfg, ex.id).latest.processed or 0) == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    c.services.executions.cancel(source.ws, cfg, ex.id)
    worker.join(30)
    latest = c.executions.get(source.ws, cfg, ex.id).latest
    assert latest.status is RunStatus.CANCELLED and latest.files == []
    assert [o.key for o in c.storage.list()] == []


def test_an_incremental_copy_in_parts_reads_in_the_held_snapshot(
    c: Container, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window's snapshot session (psycopg, held since the mark) is the one the parts'
    sessions import: the second run takes exactly the rows committed after the first."""
    calls = _spy_copy_parts(monkeypatch)
    source = Source(c, "postgresql", _pg(pg))
    tpl = c.services.catalog.create_custom_template(
        source.ws, source.conn.id, "inc", "public.everything", None, ["id"], "id", None
    )
    cfg = submitted_configuration(
        c, source.ws, tpl.id, "inc", format="csv", fields=COPY_FIELDS, parallelism=2
    )

    def run() -> list[int]:
        ex, _ = c.services.executions.trigger(source.ws, cfg, {"extractOnlyNew": True})
        assert c.worker().run_once()
        latest = c.executions.get(source.ws, cfg, ex.id).latest
        assert latest.status is RunStatus.COMPLETED, latest.error_message
        data = b"".join(c.storage.stream(latest.files[0].storage_key)).decode()
        return sorted(int(r["id"]) for r in csv.DictReader(io.StringIO(data)))

    assert run() == sorted([r[0] for r in PG_ROWS] + list(range(10, MORE_ROWS + 10)))
    with pg.connect() as conn:
        conn.execute("INSERT INTO everything (id, i4) VALUES (5000, 1), (5001, 2)")
    assert run() == [5000, 5001]
    assert calls == [2, 2]


def test_losing_the_session_that_holds_the_snapshot_fails_every_part_for_a_retry(
    tmp_path: Path, pg: PgDatabase
) -> None:
    src = open_source("postgresql", _pg(pg), {}, policy_for(tmp_path))
    assert isinstance(src, PostgresSource)
    fields = [ColumnInfo("id", "int64"), ColumnInfo("t", "string")]
    plan = ReadPlan(
        table=TableRef("public", "everything"), fields=fields, parallelism=2, partition_key="id"
    )
    parts = src.copy_partitions(plan, Rendering.CSV)
    with pg.connect() as conn:
        killed = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND query LIKE '%pg_export_snapshot%'"
        ).fetchall()
    assert killed == [(True,)]
    with pytest.raises(SourceError) as exc:
        write_parts(io.BytesIO(), parts, "none", RunControl())
    src.close()
    assert is_transient(exc.value)


def test_the_parts_sessions_start_no_parallel_workers_of_their_own(
    tmp_path: Path, pg: PgDatabase
) -> None:
    # N sessions are the run's parallelism: a Gather per range on top only contends with the
    # other ranges for the cores. The setting is the parts' transaction's, not the sessions'.
    src = open_source("postgresql", _pg(pg), {}, policy_for(tmp_path))
    assert isinstance(src, PostgresSource)
    parts = src.copy_partitions(TWO_RANGES, Rendering.CSV)
    sessions = [part.write.args[0] for part in parts]  # type: ignore[attr-defined]
    settings = [s.execute("SHOW max_parallel_workers_per_gather").fetchone() for s in sessions]
    assert settings == [("0",), ("0",)]
    write_parts(io.BytesIO(), parts, "none", RunControl())
    with pg.connect() as conn:
        assert conn.execute("SHOW max_parallel_workers_per_gather").fetchone() != ("0",)
    src.close()
