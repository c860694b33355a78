"""Run options against real PostgreSQL and SQLite sources: exact records for each option."""

from __future__ import annotations

import csv
import io
import itertools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from egress.container import Container
from egress.domain.errors import Invalid
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from tests.conftest import MysqlDatabase, PgDatabase, make_settings
from tests.support.factories import source_connection, submitted_configuration
from tests.support.migrated import migrate

REGIONS = ["EU", "NA", "APAC"]
START = datetime(2026, 1, 1)


def row(i: int) -> tuple[Any, ...]:
    return (
        i,
        REGIONS[i % 3],
        Decimal(i * 7 % 250) + Decimal("0.5"),
        START + timedelta(hours=7 * i),
        None if i % 10 == 0 else f"note {i}",
    )


ROWS = [row(i) for i in range(1, 301)]


@dataclass
class Source:
    kind: str
    settings: dict[str, Any]
    insert: Callable[[list[tuple[Any, ...]]], None]
    rename: Callable[[str, str], None]  # the events table (folder), away and back
    table: str  # the events table's name in the catalog
    secrets: dict[str, str] | None = None

    def connection(self, c: Container, ws: str, name: str) -> str:
        return source_connection(c, ws, name, self.kind, self.settings, self.secrets)


def _pg_source(db: PgDatabase) -> Source:
    with db.connect() as conn:
        conn.execute(
            "CREATE TABLE events (id bigint PRIMARY KEY, region text, amount numeric(10,2),"
            " happened timestamp, note text)"
        )

    def insert(rows: list[tuple[Any, ...]]) -> None:
        with db.connect() as conn, conn.cursor() as cur:
            cur.executemany("INSERT INTO events VALUES (%s, %s, %s, %s, %s)", rows)

    def rename(old: str, new: str) -> None:
        with db.connect() as conn:
            conn.execute(f"ALTER TABLE {old} RENAME TO {new}")  # type: ignore[arg-type]

    source = Source(
        "postgresql",
        {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"},
        insert,
        rename,
        "public.events",
    )
    insert(ROWS)
    return source


def _sqlite_source(path: Path) -> Source:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, region TEXT, amount DECIMAL(10,2),"
            " happened DATETIME, note TEXT)"
        )

    def insert(rows: list[tuple[Any, ...]]) -> None:
        with sqlite3.connect(path, timeout=30) as conn:
            conn.executemany(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                [(r[0], r[1], str(r[2]), r[3].isoformat(sep=" "), r[4]) for r in rows],
            )

    def rename(old: str, new: str) -> None:
        with sqlite3.connect(path, timeout=30) as conn:
            conn.execute(f"ALTER TABLE {old} RENAME TO {new}")

    insert(ROWS)
    return Source("sqlite", {"path": str(path)}, insert, rename, "main.events")


def _mysql_source(db: MysqlDatabase, reader: tuple[dict[str, Any], dict[str, str]]) -> Source:
    """Read by a user without PROCESS: these tests check the window's mechanics under the lag
    alone, whatever other sessions of the shared server hold open (a writing transaction open
    anywhere on it holds the mark of a user with PROCESS, tests/integration/test_incremental.py)."""
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE events (id BIGINT PRIMARY KEY, region VARCHAR(10), amount DECIMAL(10,2),"
            " happened DATETIME, note TEXT)"
        )

    def insert(rows: list[tuple[Any, ...]]) -> None:
        with db.connect() as conn, conn.cursor() as cur:
            cur.executemany("INSERT INTO events VALUES (%s, %s, %s, %s, %s)", rows)

    def rename(old: str, new: str) -> None:
        with db.connect() as conn, conn.cursor() as cur:
            cur.execute(f"ALTER TABLE {old} RENAME TO {new}")

    insert(ROWS)
    return Source("mysql", reader[0], insert, rename, f"{db.name}.events", reader[1])


def _files_source(root: Path) -> Source:
    """A folder of Parquet files; each insert adds one file, written under a hidden name and
    renamed, as a producer must so a run never reads a half-written file."""
    folder = root / "events"
    folder.mkdir(parents=True)
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("region", pa.string()),
            ("amount", pa.decimal128(10, 2)),
            ("happened", pa.timestamp("us")),
            ("note", pa.string()),
        ]
    )
    parts = itertools.count()

    def insert(rows: list[tuple[Any, ...]]) -> None:
        table = pa.Table.from_pylist(
            [dict(zip(schema.names, r, strict=True)) for r in rows], schema=schema
        )
        name = f"part-{next(parts):05d}.parquet"
        pq.write_table(table, root / "events" / f".{name}")
        (root / "events" / f".{name}").rename(root / "events" / name)

    def rename(old: str, new: str) -> None:
        (root / old).rename(root / new)

    insert(ROWS)
    return Source("files", {"url": root.as_uri()}, insert, rename, "events")


@pytest.fixture(params=["postgresql", "sqlite", "mysql", "files"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Source:
    if request.param == "postgresql":
        return _pg_source(request.getfixturevalue("pg_db"))
    if request.param == "mysql":
        return _mysql_source(
            request.getfixturevalue("mysql_db"), request.getfixturevalue("mysql_reader")
        )
    if request.param == "files":
        return _files_source(tmp_path / "in")
    return _sqlite_source(tmp_path / "events.db")


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    settings = make_settings(tmp_path, max_selected_rows=50)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings)
    yield container
    container.engine.dispose()


@dataclass
class Env:
    c: Container
    ws: str
    cfg: str

    def run(self, **options: Any) -> tuple[str, list[int]]:
        execution, _ = self.c.services.executions.trigger(self.ws, self.cfg, options)
        assert self.c.worker().run_once()
        return execution.id, self.ids(execution.id)

    def ids(self, execution_id: str, run: int | None = None) -> list[int]:
        ex = self.c.executions.get(self.ws, self.cfg, execution_id)
        record = ex.run(run) if run else ex.latest
        assert record is not None
        assert record.status in (RunStatus.COMPLETED, RunStatus.COMPLETED_NO_DATA), (
            record.error_message
        )
        if not record.files:
            return []
        data = b"".join(self.c.storage.stream(record.files[0].storage_key)).decode()
        return sorted(int(r["id"]) for r in csv.DictReader(io.StringIO(data)))


_names = itertools.count()


@pytest.fixture
def env(c: Container, source: Source) -> Env:
    ws = c.workspaces.ensure_workspace("t")
    conn = source.connection(c, ws, f"src{next(_names)}")
    tpl = c.services.catalog.create_custom_template(
        ws, conn, "events_tpl", source.table, None, ["id"], "id", "happened"
    )
    cfg_id = submitted_configuration(c, ws, tpl.id, f"events_{next(_names)}")
    # These tests check the window mechanics with writers that commit at once: no safety lag
    # (MySQL's default would hold new rows back a minute; tests/integration/test_incremental.py
    # covers the lag).
    c.configurations.update(ws, cfg_id, {"incremental_lag": 0.0})
    return Env(c, ws, cfg_id)


def expected(
    pred: Callable[[tuple[Any, ...]], bool], rows: list[tuple[Any, ...]] = ROWS
) -> list[int]:
    return sorted(r[0] for r in rows if pred(r))


def test_full_extraction_takes_every_record(env: Env) -> None:
    assert env.run()[1] == expected(lambda r: True)


def test_date_range_is_inclusive_of_both_days(env: Env) -> None:
    _, ids = env.run(dateFrom="2026-01-05", dateTo="2026-01-10")
    lo, hi = datetime(2026, 1, 5), datetime(2026, 1, 11)
    assert ids == expected(lambda r: lo <= r[3] < hi)
    assert ids  # the range is not empty


def test_date_range_with_timestamps(env: Env) -> None:
    _, ids = env.run(dateFrom="2026-01-03T07:00:00", dateTo="2026-01-04T14:00:00")
    lo, hi = datetime(2026, 1, 3, 7), datetime(2026, 1, 4, 14)
    assert ids == expected(lambda r: lo <= r[3] <= hi)


@pytest.mark.parametrize(
    ("date_from", "date_to"),
    [
        ("2026-01-01T15:00:00+08:00", "2026-01-01T16:00:00-05:00"),
        ("2026-01-01T02:00:00-05:00", "2026-01-02T05:00:00+08:00"),
        ("2026-01-01T07:00:00Z", "2026-01-01T21:00:00+00:00"),
    ],
)
def test_date_range_offsets_are_converted_to_utc(env: Env, date_from: str, date_to: str) -> None:
    """A timestamp column without a time zone holds UTC: the range's offsets are applied
    before they are dropped, on every source (they used to be dropped as they were)."""
    _, ids = env.run(dateFrom=date_from, dateTo=date_to)
    lo, hi = datetime(2026, 1, 1, 7), datetime(2026, 1, 1, 21)
    assert ids == expected(lambda r: lo <= r[3] <= hi) == [1, 2, 3]


def test_where_clause(env: Env) -> None:
    _, ids = env.run(whereClause="region = 'EU' AND amount > 100")
    assert ids == expected(lambda r: r[1] == "EU" and r[2] > 100)


def test_where_clause_with_functions_null_and_in(env: Env) -> None:
    _, ids = env.run(
        whereClause="(note IS NULL OR lower(region) IN ('apac')) AND NOT id BETWEEN 10 AND 20"
    )
    assert ids == expected(
        lambda r: (r[4] is None or r[1].lower() == "apac") and not 10 <= r[0] <= 20
    )


def test_where_clause_combines_with_date_range(env: Env) -> None:
    _, ids = env.run(whereClause="region <> 'NA'", dateFrom="2026-01-02", dateTo="2026-01-20")
    lo, hi = datetime(2026, 1, 2), datetime(2026, 1, 21)
    assert ids == expected(lambda r: r[1] != "NA" and lo <= r[3] < hi)


def test_a_triggers_where_clause_narrows_the_configurations_filter(env: Env) -> None:
    """The configuration's filter holds on every run: a trigger's whereClause is ANDed with
    it, and ``null`` adds nothing. Before 2026-12-04 it replaced the filter (``null`` dropped
    it), and rows the filter keeps out were delivered in COMPLETED runs."""
    env.c.services.configurations.update(env.ws, env.cfg, {"filter": "region = 'EU'"})
    execution, ids = env.run(whereClause="id <= 30")
    assert ids == expected(lambda r: r[1] == "EU" and r[0] <= 30)
    frozen = env.c.executions.get(env.ws, env.cfg, execution).spec.options.where_clause
    assert frozen == "(region = 'EU') AND (id <= 30)"
    assert env.run(whereClause=None)[1] == expected(lambda r: r[1] == "EU")
    assert env.run(whereClause="region = 'EU'")[1] == expected(lambda r: r[1] == "EU")


def test_a_huge_number_in_a_filter_matches_nothing_or_fails_clearly(
    env: Env, source: Source
) -> None:
    """Beyond 64 bits: PostgreSQL and MariaDB compare it as a numeric; SQLite and Arrow cannot
    bind it, and the run fails saying so (never an internal error)."""
    execution, _ = env.c.services.executions.trigger(
        env.ws, env.cfg, {"whereClause": "id = 99999999999999999999"}
    )
    assert env.c.worker().run_once()
    run = env.c.executions.get(env.ws, env.cfg, execution.id).latest
    if source.kind in ("sqlite", "files"):
        assert run.status is RunStatus.FAILED
        assert run.error_message in (
            "a value in the filter does not fit SQLite: Python int too large to convert to"
            " SQLite INTEGER",
            "whereClause: 99999999999999999999 cannot be compared with values of type int64",
        )
    else:
        assert run.status is RunStatus.COMPLETED_NO_DATA, run.error_message


def test_selected_rows(env: Env) -> None:
    _, ids = env.run(selectAll=False, rows=[{"id": 17, "region": "ignored"}, {"id": 42}])
    assert ids == [17, 42]


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"selectAll": True, "rows": [{"id": 1}]}, "rows", "omitted when selectAll is true"),
        ({"selectAll": False}, "rows", "required"),
        ({"rows": [{"region": "EU"}]}, "rows.0", "misses the key field(s) 'id'"),
        ({"rows": [{"id": i} for i in range(51)]}, "rows", "at most 50"),
        ({"dateFrom": "2026-02-01", "dateTo": "2026-01-01"}, "date_from", "after dateTo"),
        ({"dateFrom": "yesterday"}, "date_from", "not an ISO date"),
        ({"whereClause": "nope = 1"}, "where_clause", "unknown column 'nope'"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(
    env: Env, options: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(Invalid) as err:
        env.c.services.executions.trigger(env.ws, env.cfg, options)
    assert message in err.value.detail
    assert ".".join(str(p) for p in err.value.errors[0].loc[1:]) == field
    assert env.c.executions.list_page(env.ws, env.cfg, PageRequest(0, 10)).total == 0


def test_incremental_runs_take_each_record_exactly_once(env: Env, source: Source) -> None:
    first_id, first = env.run(extractOnlyNew=True)
    assert first == expected(lambda r: True)
    ex = env.c.executions.get(env.ws, env.cfg, first_id)
    assert ex.spec.window is not None
    window = ex.spec.window.to_json()
    assert {k: window[k] for k in ("field", "low", "high")} == {
        "field": "id",
        "low": None,
        "high": 300,
    }
    # PostgreSQL reads the mark and the rows in one snapshot; the others wait out a lag.
    assert ("snapshot" in window) is (source.kind == "postgresql")
    assert env.c.configurations.get(env.ws, env.cfg).watermark == 300

    _, nothing = env.run(extractOnlyNew=True)
    assert nothing == []

    source.insert([row(i) for i in range(301, 306)])
    second_id, second = env.run(extractOnlyNew=True)
    assert second == [301, 302, 303, 304, 305]

    # A re-run reproduces its frozen window even though the source has grown since.
    source.insert([row(i) for i in range(306, 310)])
    env.c.executions.rerun(env.ws, env.cfg, second_id, env.c.clock())
    assert env.c.worker().run_once()
    assert env.ids(second_id, run=2) == [301, 302, 303, 304, 305]
    assert env.c.configurations.get(env.ws, env.cfg).watermark == 305

    _, third = env.run(extractOnlyNew=True)
    assert third == [306, 307, 308, 309]


def test_failed_incremental_run_moves_no_watermark(env: Env, source: Source) -> None:
    env.run(extractOnlyNew=True)
    source.insert([row(i) for i in range(301, 311)])
    source.rename("events", "events_away")
    execution, _ = env.c.services.executions.trigger(env.ws, env.cfg, {"extractOnlyNew": True})
    env.c.worker().run_once()
    failed = env.c.executions.get(env.ws, env.cfg, execution.id).latest
    assert failed.status is RunStatus.FAILED
    assert env.c.configurations.get(env.ws, env.cfg).watermark == 300
    source.rename("events_away", "events")
    _, ids = env.run(extractOnlyNew=True)
    assert ids == list(range(301, 311))


def test_inserts_during_a_run_land_in_exactly_one_execution(env: Env, source: Source) -> None:
    stop = threading.Event()
    inserted: list[int] = []

    def writer() -> None:
        for i in itertools.count(1000):
            if stop.is_set():
                return
            source.insert([row(i)])
            inserted.append(i)

    t = threading.Thread(target=writer)
    t.start()
    try:
        runs = [env.run(extractOnlyNew=True)[1] for _ in range(3)]
    finally:
        stop.set()
        t.join()
    runs.append(env.run(extractOnlyNew=True)[1])
    everything = [i for ids in runs for i in ids]
    assert len(everything) == len(set(everything)), "no record twice"
    assert sorted(everything) == sorted([r[0] for r in ROWS] + inserted), "no record lost"


def test_incremental_needs_a_cursor_field(c: Container, source: Source) -> None:
    ws = c.workspaces.ensure_workspace("t")
    conn = source.connection(c, ws, "plain")
    tables = c.services.catalog.discover(ws, conn)
    tpl = next(
        t
        for t in c.templates.list_page(ws, conn, PageRequest(0, 10)).items
        if t.name.endswith("events")
    )
    assert tables
    cfg_id = submitted_configuration(c, ws, tpl.id, "plain")
    with pytest.raises(Invalid, match="no cursorField"):
        c.services.executions.trigger(ws, cfg_id, {"extractOnlyNew": True})
    with pytest.raises(Invalid, match="no dateField"):
        c.services.executions.trigger(ws, cfg_id, {"dateFrom": "2026-01-01"})
