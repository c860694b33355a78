"""Incremental extraction under concurrent writers (issue 12): no row is lost or delivered twice.

PostgreSQL reads the mark and the rows in one snapshot and takes the rows that committed behind
the previous mark since the previous snapshot; MariaDB waits out a safety lag.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from egress.container import Container
from egress.db.watermarks import read_state
from egress.domain.errors import Invalid
from egress.domain.incremental import TRX_START_MARGIN_S
from egress.domain.status import RunStatus
from egress.sources.mysql.transactions import PROCESS_WARNING
from tests.conftest import MysqlDatabase, PgDatabase, make_settings
from tests.support.factories import source_connection, submitted_configuration
from tests.support.migrated import migrate

# The marks here read every open transaction of the server (PostgreSQL's snapshot, MariaDB's
# innodb_trx): another test process's transaction would hold them. make test runs these alone.
pytestmark = pytest.mark.serial

_names = itertools.count()


class FakeClock:
    """The worker's clock, moved by the test: the lag passes without waiting for it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    c: Container
    ws: str
    cfg: str
    fmt: str
    connection: str

    def run(self, **options: Any) -> tuple[str, list[int]]:
        """Trigger an incremental run and carry it out; its execution and delivered ids."""
        execution, _ = self.c.services.executions.trigger(
            self.ws, self.cfg, {"extractOnlyNew": True, **options}
        )
        assert self.c.worker().run_once()
        return execution.id, self.ids(execution.id)

    def rerun(self, execution_id: str) -> list[int]:
        self.c.executions.rerun(self.ws, self.cfg, execution_id, self.c.clock())
        assert self.c.worker().run_once()
        return self.ids(execution_id)

    def window(self, execution_id: str) -> dict[str, Any]:
        window = self.c.executions.get(self.ws, self.cfg, execution_id).spec.window
        assert window is not None
        return window.to_json()

    def ids(self, execution_id: str) -> list[int]:
        run = self.c.executions.get(self.ws, self.cfg, execution_id).latest
        assert run.status in (RunStatus.COMPLETED, RunStatus.COMPLETED_NO_DATA), run.error_message
        if not run.files:
            return []
        data = b"".join(self.c.storage.stream(run.files[0].storage_key))
        if self.fmt == "parquet":
            return sorted(pq.read_table(io.BytesIO(data)).column("id").to_pylist())
        if self.fmt == "jsonl":
            return sorted(json.loads(line)["id"] for line in data.splitlines())
        return sorted(int(r["id"]) for r in csv.DictReader(io.StringIO(data.decode())))


def _container(tmp_path: Path, clock: Callable[[], datetime] | None = None) -> Container:
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    if clock is None:
        return Container.build(settings)
    return Container.build(settings, clock=clock)


def _env(
    c: Container,
    kind: str,
    settings: dict[str, Any],
    table: str,
    cursor: str = "id",
    fmt: str = "csv",
    lag: float | None = None,
    secrets: dict[str, str] | None = None,
) -> Env:
    ws = c.workspaces.ensure_workspace("t")
    conn = source_connection(c, ws, f"src{next(_names)}", kind, settings, secrets)
    tpl = c.services.catalog.create_custom_template(
        ws, conn, f"tpl{next(_names)}", table, None, ["id"], cursor, None
    )
    cfg = submitted_configuration(
        c, ws, tpl.id, f"cfg{next(_names)}", format=fmt, incremental_lag=lag
    )
    return Env(c, ws, cfg, fmt, conn)


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    container = _container(tmp_path)
    yield container
    container.engine.dispose()


def _pg_settings(db: PgDatabase) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"}


def _pg_ev(db: PgDatabase) -> None:
    with db.connect() as conn:
        conn.execute("CREATE TABLE ev (id bigserial PRIMARY KEY, v text)")
        conn.execute("INSERT INTO ev (v) SELECT 'x' FROM generate_series(1, 10)")


# --------------------------------------------------------------------------- PostgreSQL
# The COPY path (CSV, JSONL) and the Arrow path.
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_postgres_late_commit_behind_the_mark_is_delivered(
    c: Container, pg_db: PgDatabase, fmt: str
) -> None:
    """The issue's four steps: id 11 commits after id 12 was delivered, and still arrives."""
    _pg_ev(pg_db)
    env = _env(c, "postgresql", _pg_settings(pg_db), "public.ev", fmt=fmt)
    first, ids = env.run()
    assert ids == list(range(1, 11))
    assert env.window(first)["high"] == 10

    with pg_db.connect() as a, pg_db.connect() as b:
        a.execute("BEGIN")
        assert a.execute("INSERT INTO ev (v) VALUES ('slow') RETURNING id").fetchone() == (11,)
        assert b.execute("INSERT INTO ev (v) VALUES ('fast') RETURNING id").fetchone() == (12,)
        second, ids = env.run()
        assert ids == [12]
        assert env.window(second)["high"] == 12
        a.execute("COMMIT")

    third, ids = env.run()
    assert ids == [11]
    assert env.window(third)["low"] == 12
    assert env.c.configurations.get(env.ws, env.cfg).watermark == 12
    _, ids = env.run()
    assert ids == []


def test_postgres_rows_written_under_savepoints_are_delivered(
    c: Container, pg_db: PgDatabase
) -> None:
    """A row written inside a savepoint carries the subtransaction's id, which the snapshot's
    list of transactions in progress does not show: it is still taken once it commits."""
    _pg_ev(pg_db)
    env = _env(c, "postgresql", _pg_settings(pg_db), "public.ev")
    assert env.run()[1] == list(range(1, 11))
    with pg_db.connect() as a, pg_db.connect() as b:
        a.execute("BEGIN")
        a.execute("INSERT INTO ev (v) VALUES ('top')")  # 11, the top-level transaction's id
        a.execute("SAVEPOINT s1")
        a.execute("INSERT INTO ev (v) VALUES ('sub')")  # 12, a subtransaction's id
        a.execute("RELEASE SAVEPOINT s1")
        a.execute("SAVEPOINT s2")
        a.execute("INSERT INTO ev (v) VALUES ('undone')")  # 13, rolled back: never delivered
        a.execute("ROLLBACK TO SAVEPOINT s2")
        # A transaction whose first write is under a savepoint: its top-level id comes first.
        b.execute("BEGIN")
        b.execute("SAVEPOINT s")
        b.execute("INSERT INTO ev (v) VALUES ('only sub')")  # 14
        with pg_db.connect() as other:
            other.execute("INSERT INTO ev (v) VALUES ('fast')")  # 15
        assert env.run()[1] == [15]
        a.execute("COMMIT")
        b.execute("COMMIT")
    assert env.run()[1] == [11, 12, 14]
    assert env.run()[1] == []


def test_postgres_rerun_reproduces_exactly_its_rows_after_late_commits(
    c: Container, pg_db: PgDatabase
) -> None:
    _pg_ev(pg_db)
    env = _env(c, "postgresql", _pg_settings(pg_db), "public.ev")
    env.run()
    with pg_db.connect() as a, pg_db.connect() as b, pg_db.connect() as d:
        a.execute("BEGIN")
        a.execute("INSERT INTO ev (v) VALUES ('slow')")  # 11
        b.execute("INSERT INTO ev (v) VALUES ('fast')")  # 12
        second, ids = env.run()
        assert ids == [12]
        d.execute("BEGIN")
        d.execute("INSERT INTO ev (v) VALUES ('slower')")  # 13
        a.execute("COMMIT")
        third, ids = env.run()
        assert ids == [11]
        d.execute("COMMIT")
        b.execute("INSERT INTO ev (v) VALUES ('later')")  # 14
    # Each re-run reads its frozen window again: 11 and 13 are visible now and at or below
    # the second run's mark, yet that run did not see them, so its re-run does not take them.
    assert env.rerun(second) == [12]
    assert env.rerun(third) == [11]
    assert env.run()[1] == [13, 14]


def _wait_until_the_cluster_is_quiet(db: PgDatabase, timeout: float = 300) -> None:
    """No other session of the whole cluster inside a transaction (what "quiet" means)."""
    deadline = time.monotonic() + timeout
    with db.connect() as conn:
        conn.autocommit = True
        while conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
            " AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)"
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "another session stayed in a transaction"
            time.sleep(0.2)


def test_postgres_late_commit_scan_is_skipped_after_a_quiet_snapshot(
    c: Container, pg_db: PgDatabase
) -> None:
    _pg_ev(pg_db)
    env = _env(c, "postgresql", _pg_settings(pg_db), "public.ev")
    _wait_until_the_cluster_is_quiet(pg_db)  # e.g. an earlier test run's dropping databases
    first, _ = env.run()
    assert env.window(first)["quiet"] is True  # nothing else was running
    with pg_db.connect() as a:
        a.execute("BEGIN")
        a.execute("SELECT 1")  # inside a transaction, no transaction id yet
        second, _ = env.run()
        a.execute("COMMIT")
    assert env.window(second)["after"] is None  # the first snapshot was quiet: no scan
    assert env.window(second)["quiet"] is False  # a session was inside a transaction
    third, _ = env.run()
    assert env.window(third)["after"] == env.window(second)["snapshot"]


def test_postgres_failed_run_moves_nothing(c: Container, pg_db: PgDatabase) -> None:
    _pg_ev(pg_db)
    env = _env(c, "postgresql", _pg_settings(pg_db), "public.ev")
    env.run()
    with pg_db.connect() as a, pg_db.connect() as b:
        a.execute("BEGIN")
        a.execute("INSERT INTO ev (v) VALUES ('slow')")  # 11
        b.execute("INSERT INTO ev (v) VALUES ('fast')")  # 12
        execution, _ = env.c.services.executions.trigger(
            env.ws, env.cfg, {"extractOnlyNew": True, "whereClause": "1 / (id - id) = 1"}
        )
        assert env.c.worker().run_once()
        failed = env.c.executions.get(env.ws, env.cfg, execution.id).latest
        assert failed.status is RunStatus.FAILED
        assert "division by zero" in (failed.error_message or "")
        a.execute("COMMIT")
    assert env.c.configurations.get(env.ws, env.cfg).watermark == 10
    assert env.run()[1] == [11, 12]


# ------------------------------------------------------------------------------ MariaDB
def _mysql_ev(db: MysqlDatabase) -> None:
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE ev (id BIGINT AUTO_INCREMENT PRIMARY KEY, v TEXT)")
        cur.executemany("INSERT INTO ev (v) VALUES (%s)", [("x",)] * 10)


def test_mysql_late_commit_is_delivered_once_the_lag_has_passed(
    tmp_path: Path, mysql_db: MysqlDatabase, mysql_reader: tuple[dict[str, Any], dict[str, str]]
) -> None:
    """The four steps on MariaDB: a run only advances to a maximum seen ``lag`` earlier, so id
    12 waits with id 11, and both arrive together once the lag has passed. (The lag alone: a
    user without PROCESS, so what other sessions of the server hold open does not matter.)"""
    _mysql_ev(mysql_db)
    clock = FakeClock()
    c = _container(tmp_path, clock)
    lag = timedelta(seconds=30)
    settings, user_secrets = mysql_reader
    table = f"{mysql_db.name}.ev"
    env = _env(c, "mysql", settings, table, lag=lag.total_seconds(), secrets=user_secrets)
    assert env.run()[1] == []  # ids 1-10 seen now: taken once they are 30 s old
    clock.now += lag
    assert env.run()[1] == list(range(1, 11))

    a, b = mysql_db.connect(), mysql_db.connect()
    try:
        a.begin()
        with a.cursor() as cur:
            cur.execute("INSERT INTO ev (v) VALUES ('slow')")
            assert cur.lastrowid == 11
        with b.cursor() as cur:
            cur.execute("INSERT INTO ev (v) VALUES ('fast')")
            assert cur.lastrowid == 12
        clock.now += timedelta(seconds=1)
        assert env.run()[1] == []  # 12 was seen now: not yet old enough
        clock.now += timedelta(seconds=10)
        a.commit()  # within the lag of 12 being seen
    finally:
        a.close()
        b.close()
    clock.now += lag
    assert env.run()[1] == [11, 12]
    assert env.run()[1] == []
    assert c.configurations.get(env.ws, env.cfg).watermark == 12
    c.engine.dispose()


def _past_the_start_margin(db: MysqlDatabase) -> None:
    """Wait (polled, at most three seconds) until a transaction started now counts as started
    after the reads so far: InnoDB keeps a start in whole seconds, and Egress wants a margin.
    One second more than that: in CI (twice, never locally) the transaction begun after the
    wait showed an innodb_trx start at least a second earlier, so the row read before it was
    held back too (safe for the product: an earlier start only holds the mark longer)."""
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT UNIX_TIMESTAMP(NOW(6))")
        wanted = int(cur.fetchone()[0]) + 2 + TRX_START_MARGIN_S
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            cur.execute("SELECT UNIX_TIMESTAMP(NOW(6))")
            if int(cur.fetchone()[0]) >= wanted:
                return
            time.sleep(0.05)
    raise AssertionError("the server's clock did not move")


def _first_delivery(env: Env, clock: FakeClock, db: MysqlDatabase) -> list[int]:
    """Runs until one delivers something. The server is shared: another session's open
    transaction holds the mark too (as it should) until it ends."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        clock.now += timedelta(seconds=1)
        execution, ids = env.run()
        if ids:
            return ids
        # InnoDB refreshes innodb_trx's cache only when it was not read for 0.1 s: runs read
        # closer than that see the ended transaction for as long as they keep coming.
        time.sleep(0.15)
    run = env.c.executions.get(env.ws, env.cfg, execution).latest
    with env.c.engine.connect() as conn:
        seen = read_state(conn, env.cfg).observations
    raise AssertionError(
        f"no run delivered anything: the last run's window {env.window(execution)},"
        f" warnings {run.warnings}; observations {seen}; open on the server:"
        f" {_open_transactions(db)}"
    )


def _open_transactions(db: MysqlDatabase) -> list[tuple[Any, ...]]:
    """What holds the mark: each open transaction's start and its session (a failure's
    evidence: another client of the shared server holding a write transaction open)."""
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT t.trx_started, t.trx_is_read_only, t.trx_autocommit_non_locking,"
            " p.user, p.host, p.db, p.command, p.time, p.info"
            " FROM information_schema.innodb_trx t"
            " LEFT JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id"
        )
        return list(cur.fetchall())


def test_mysql_with_process_holds_the_mark_while_an_older_transaction_is_open(
    tmp_path: Path, mysql_db: MysqlDatabase
) -> None:
    """A transaction held open three times the lag: the mark goes up to what was seen before
    it started, and no further until it ends, so its row comes with the next run."""
    _mysql_ev(mysql_db)
    settings, user_secrets = mysql_db.user("PROCESS")
    clock = FakeClock()
    c = _container(tmp_path, clock)
    lag = timedelta(seconds=1)
    table = f"{mysql_db.name}.ev"
    env = _env(c, "mysql", settings, table, lag=lag.total_seconds(), secrets=user_secrets)
    a, b = mysql_db.connect(), mysql_db.connect()
    try:
        assert c.services.catalog.test_connection(env.ws, env.connection) == (None, [])
        assert env.run()[1] == []
        assert _first_delivery(env, clock, mysql_db) == list(range(1, 11))
        with b.cursor() as cur:
            cur.execute("INSERT INTO ev (v) VALUES ('before')")  # id 11
        assert env.run()[1] == []  # 11 seen now: not yet lag old
        _past_the_start_margin(mysql_db)
        a.begin()
        with a.cursor() as cur:
            cur.execute("INSERT INTO ev (v) VALUES ('slow')")
            assert cur.lastrowid == 12
        with b.cursor() as cur:
            cur.execute("INSERT INTO ev (v) VALUES ('fast')")
            assert cur.lastrowid == 13
        # 11 was seen before the transaction started: taken while it is still open.
        assert _first_delivery(env, clock, mysql_db) == [11]
        for _ in range(3):  # held three lags: 13 is old enough, but seen after it started
            clock.now += lag
            execution, ids = env.run()
            assert ids == []
            assert env.window(execution)["high"] == 11
            (warning,) = c.executions.get(env.ws, env.cfg, execution).latest.warnings
            assert "a transaction open on the source server since" in warning
            assert "holds this run's window back" in warning
        a.commit()
        assert _first_delivery(env, clock, mysql_db) == [12, 13]
        execution, ids = env.run()  # nothing open any more: no warning
        assert (ids, c.executions.get(env.ws, env.cfg, execution).latest.warnings) == ([], [])
        assert c.configurations.get(env.ws, env.cfg).watermark == 13
    finally:
        a.close()
        b.close()
        c.engine.dispose()
        mysql_db.drop_user(settings)


def test_mysql_transaction_open_in_another_database_holds_the_mark(
    tmp_path: Path, mysql_db: MysqlDatabase, mysql_factory: Callable[[], MysqlDatabase]
) -> None:
    """A writing transaction open anywhere on the server (it may write into any database)
    holds the mark, even before the first delivery: the run completes with no data and moves
    no watermark; once the transaction ends, a run takes every record. (Under pytest-xdist
    other test modules' writers do this to each other's runs.)"""
    _mysql_ev(mysql_db)
    elsewhere = mysql_factory()
    clock = FakeClock()
    c = _container(tmp_path, clock)
    env = _env(c, "mysql", mysql_db.settings, f"{mysql_db.name}.ev", lag=0.0)
    holder = elsewhere.connect()
    try:
        with holder.cursor() as cur:
            cur.execute("CREATE TABLE other (id BIGINT AUTO_INCREMENT PRIMARY KEY)")
            holder.begin()
            cur.execute("INSERT INTO other VALUES ()")
        for _ in range(2):
            clock.now += timedelta(seconds=1)
            execution, _ = env.run()
            latest = c.executions.get(env.ws, env.cfg, execution).latest
            assert (latest.status, latest.record_count, latest.files) == (
                RunStatus.COMPLETED_NO_DATA,
                0,
                [],
            )
            assert env.window(execution)["high"] is None
            assert c.configurations.get(env.ws, env.cfg).watermark is None
            (warning,) = latest.warnings  # the user learns why nothing came, and what to end
            assert "holds this run's window back" in warning
        holder.rollback()
        assert _first_delivery(env, clock, mysql_db) == list(range(1, 11))
        assert c.configurations.get(env.ws, env.cfg).watermark == 10
    finally:
        holder.close()
        c.engine.dispose()


def test_mysql_without_process_warns_and_relies_on_the_lag(
    tmp_path: Path, mysql_db: MysqlDatabase
) -> None:
    """The weaker guarantee the README states: without PROCESS a row whose transaction stays
    open longer than the lag is missed, and /test says so."""
    _mysql_ev(mysql_db)
    settings, user_secrets = mysql_db.user()
    clock = FakeClock()
    c = _container(tmp_path, clock)
    lag = timedelta(seconds=1)
    table = f"{mysql_db.name}.ev"
    env = _env(c, "mysql", settings, table, lag=lag.total_seconds(), secrets=user_secrets)
    assert c.services.catalog.test_connection(env.ws, env.connection) == (None, [PROCESS_WARNING])
    a, b = mysql_db.connect(), mysql_db.connect()
    try:
        assert env.run()[1] == []
        clock.now += lag
        assert env.run()[1] == list(range(1, 11))
        a.begin()
        with a.cursor() as cur:
            cur.execute("INSERT INTO ev (v) VALUES ('slow')")  # id 11, held three lags
        with b.cursor() as cur:
            cur.execute("INSERT INTO ev (v) VALUES ('fast')")  # id 12
        assert env.run()[1] == []
        clock.now += 3 * lag
        assert env.run()[1] == [12]
        a.commit()
        clock.now += lag
        assert env.run()[1] == []  # 11 committed behind the mark: missed, as documented
    finally:
        a.close()
        b.close()
        c.engine.dispose()
        mysql_db.drop_user(settings)


def test_mysql_default_lag_and_bad_lags(
    c: Container, mysql_db: MysqlDatabase, mysql_reader: tuple[dict[str, Any], dict[str, str]]
) -> None:
    _mysql_ev(mysql_db)
    settings, user_secrets = mysql_reader  # the lag alone, as above
    env = _env(c, "mysql", settings, f"{mysql_db.name}.ev", secrets=user_secrets)
    execution, ids = env.run()
    assert ids == []  # the default lag (a minute) has not passed since ids 1-10 were seen
    assert env.window(execution)["lag"] == 60.0
    _, ids = env.run(incrementalLag="0s")  # a run's own lag overrides the configuration's
    assert ids == list(range(1, 11))
    for bad, message in [("5 parsecs", "not a duration"), (-1, "between 0 seconds and 1 day")]:
        with pytest.raises(Invalid, match=message) as err:
            env.run(incrementalLag=bad)
        assert err.value.errors[0].loc == ("body", "incremental_lag")


# ---------------------------------------------------------------- concurrent writers
WRITERS = 8
WRITE_FOR_S = 6.0
RUN_EVERY_S = 0.2
MIN_RUNS = 10  # on a loaded machine runs take longer: write until this many ran, at least


def _hammer(
    connect: Callable[[], Any], insert: Callable[[Any], None], max_hold_s: float, env: Env
) -> tuple[list[list[int]], list[str]]:
    """WRITERS threads insert in transactions held open a random while (committing in another
    order than they took their ids) while incremental runs fire every RUN_EVERY_S; then runs
    until every committed row is delivered. The ids of every run, and the executions."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            conn = connect()
            while not stop.is_set():
                conn.begin()
                # Some take their time before writing: now() is then long before the commit.
                stop.wait(rnd.choice([0, 0, rnd.uniform(0, max_hold_s / 2)]))
                for _ in range(rnd.randint(1, 3)):
                    insert(conn)
                # Mostly quick; some held across several runs.
                stop.wait(rnd.choice([0, 0.01, 0.05, rnd.uniform(0, max_hold_s)]))
                if rnd.random() < 0.1:
                    conn.rollback()
                else:
                    conn.commit()
            conn.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    delivered: list[list[int]] = []
    runs: list[str] = []
    deadline = time.monotonic() + WRITE_FOR_S
    try:
        while time.monotonic() < deadline or len(runs) < MIN_RUNS:
            tick = time.monotonic()
            execution, ids = env.run()
            delivered.append(ids)
            runs.append(execution)
            stop.wait(max(0.0, RUN_EVERY_S - (time.monotonic() - tick)))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    return delivered, runs


def _assert_exactly_once(delivered: list[list[int]], table_ids: list[int]) -> None:
    everything = [i for ids in delivered for i in ids]
    assert len(everything) == len(set(everything)), "a row was delivered twice"
    assert sorted(everything) == sorted(table_ids), "a row was lost"


class _PgWriter:
    """psycopg's connection with the DB-API begin/commit/rollback the writers use."""

    def __init__(self, db: PgDatabase) -> None:
        self.conn = db.connect()

    def begin(self) -> None:
        self.conn.execute("BEGIN")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()


@pytest.mark.parametrize("cursor", ["id", "at"])
def test_postgres_concurrent_writers_lose_nothing(
    c: Container, pg_db: PgDatabase, cursor: str
) -> None:
    """bigserial ids and ``timestamptz default now()`` (the transaction's start) alike."""
    with pg_db.connect() as conn:
        conn.execute(
            "CREATE TABLE ev (id bigserial PRIMARY KEY, v text, at timestamptz DEFAULT now())"
        )
        conn.execute("CREATE INDEX ON ev (at)")

    def insert(w: _PgWriter) -> None:
        w.conn.execute("INSERT INTO ev (v) VALUES ('w')")

    env = _env(c, "postgresql", _pg_settings(pg_db), "public.ev", cursor=cursor)
    delivered, runs = _hammer(lambda: _PgWriter(pg_db), insert, 1.0, env)
    delivered.append(env.run()[1])  # nothing is in flight any more: one run takes the rest
    with pg_db.connect() as conn:
        table_ids = [r[0] for r in conn.execute("SELECT id FROM ev").fetchall()]
    assert len(runs) >= MIN_RUNS and len(table_ids) > 100
    assert any(env.window(r)["after"] for r in runs), "late commits were looked for"
    _assert_exactly_once(delivered, table_ids)


def test_mysql_concurrent_writers_lose_nothing_within_the_lag(
    c: Container, mysql_db: MysqlDatabase
) -> None:
    """No transaction is held open longer than the lag (1 s) here: that is the condition."""
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE ev (id BIGINT AUTO_INCREMENT PRIMARY KEY, v TEXT)")

    def insert(conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO ev (v) VALUES ('w')")

    env = _env(c, "mysql", mysql_db.settings, f"{mysql_db.name}.ev", lag=1.0)
    delivered, _ = _hammer(mysql_db.connect, insert, 0.6, env)
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM ev")
        table_ids = [r[0] for r in cur.fetchall()]
    # A final run past the lag (polled: the lag is real time here).
    deadline = time.monotonic() + 10
    while sum(map(len, delivered)) < len(table_ids) and time.monotonic() < deadline:
        delivered.append(env.run()[1])
    _assert_exactly_once(delivered, table_ids)


# --------------------------------------------------------------------------- number cursors
# A decimal cursor's mark is kept as its text, and was compared as text: "10.5" came before
# "9.5", so once the cursor passed a power of ten a run took nothing new, ever (lag sources), or
# took rows again (PostgreSQL tables). An unsigned 64-bit mark past int64 was stored by SQLite
# (the metadata database) as a rounded REAL: the same. Each case: two rows, then one past them.
NUMBER_CURSORS = {
    "mysql_decimal": ("DECIMAL(10,1)", ["8.5", "9.5"], "10.5"),
    "mysql_unsigned": (
        "BIGINT UNSIGNED",
        [str(2**63), str(2**64 - 6)],
        str(2**64 - 5),
    ),
    "pg_numeric": ("numeric(10,1)", ["8.5", "9.5"], "10.5"),
    "pg_view_numeric": ("numeric", ["99", "99.5"], "100"),
    "sqlite_decimal": ("DECIMAL(10,1)", ["8.5", "9.5"], "10.5"),
}


@pytest.mark.parametrize("case", sorted(NUMBER_CURSORS))
def test_number_cursors_move_by_value_past_a_power_of_ten_and_past_int64(
    c: Container, request: pytest.FixtureRequest, tmp_path: Path, case: str
) -> None:
    sql_type, first, later_value = NUMBER_CURSORS[case]
    create = f"CREATE TABLE nums (id int PRIMARY KEY, c {sql_type})"
    rows = [(i, v) for i, v in enumerate(first, 1)]
    if case.startswith("mysql"):
        db = request.getfixturevalue("mysql_db")
        settings, table = db.settings, f"{db.name}.nums"

        def execute(sql: str, args: Any = ()) -> None:
            with db.connect() as conn, conn.cursor() as cur:
                cur.execute(sql, args)
                conn.commit()

    elif case.startswith("pg"):
        db = request.getfixturevalue("pg_db")
        settings, table = _pg_settings(db), "public.nums"

        def execute(sql: str, args: Any = ()) -> None:
            with db.connect() as conn:
                conn.execute(sql.replace("?", "%s"), args)  # type: ignore[arg-type]

    else:
        path = tmp_path / "nums.db"
        settings, table = {"path": str(path)}, "main.nums"

        def execute(sql: str, args: Any = ()) -> None:
            with sqlite3.connect(path) as conn:
                conn.execute(sql.replace("%s", "?"), args)

    execute(create)
    for row in rows:
        execute("INSERT INTO nums VALUES (%s, %s)", row)
    if case == "pg_view_numeric":  # a view: no snapshot, the lag rules
        execute("CREATE VIEW numsv AS SELECT * FROM nums")
        table = "public.numsv"
    env = _env(c, _KINDS[case.split("_")[0]], settings, table, cursor="c", lag=0)
    assert env.run()[1] == [1, 2]
    execute("INSERT INTO nums VALUES (%s, %s)", (3, later_value))
    assert env.run()[1] == [3]
    assert env.run()[1] == []
    assert str(c.configurations.get(env.ws, env.cfg).watermark) == later_value


_KINDS = {"mysql": "mysql", "pg": "postgresql", "sqlite": "sqlite"}


# --------------------------------------------------------------------------- text cursors
# A text mark was compared in Python's code-point order ('B2' < 'a1'), while the source orders
# by the column's collation (MySQL's case-insensitive default, en_US, SQLite NOCASE): 'B2'
# after 'a1' was never taken by a lag source, and taken again on every run of a PostgreSQL table.
TEXT_CURSORS = {
    "mysql": "varchar(20) COLLATE utf8mb4_general_ci",
    "pg": 'text COLLATE "en-x-icu"',
    "pg_view": 'text COLLATE "en-x-icu"',
    "sqlite": "TEXT COLLATE NOCASE",
}


@pytest.mark.parametrize("case", sorted(TEXT_CURSORS))
def test_text_cursors_move_in_the_source_collation(
    c: Container, request: pytest.FixtureRequest, tmp_path: Path, case: str
) -> None:
    kind = case.split("_")[0]
    if kind == "mysql":
        db = request.getfixturevalue("mysql_db")
        settings, table = db.settings, f"{db.name}.t"

        def execute(sql: str) -> None:
            with db.connect() as conn, conn.cursor() as cur:
                cur.execute(sql)
                conn.commit()

    elif kind == "pg":
        db = request.getfixturevalue("pg_db")
        settings, table = _pg_settings(db), "public.t"

        def execute(sql: str) -> None:
            with db.connect() as conn:
                conn.execute(sql)  # type: ignore[arg-type]

    else:
        path = tmp_path / "t.db"
        settings, table = {"path": str(path)}, "main.t"

        def execute(sql: str) -> None:
            with sqlite3.connect(path) as conn:
                conn.execute(sql)

    execute(f"CREATE TABLE t (id int PRIMARY KEY, c {TEXT_CURSORS[case]})")
    execute("INSERT INTO t VALUES (1, 'a1')")
    if case == "pg_view":  # no snapshot: the lag rules
        execute("CREATE VIEW tv AS SELECT * FROM t")
        table = "public.tv"
    env = _env(c, _KINDS[kind], settings, table, cursor="c", lag=0)
    assert env.run()[1] == [1]
    execute("INSERT INTO t VALUES (2, 'B2')")
    assert env.run()[1] == [2]
    assert env.run()[1] == []
    assert c.configurations.get(env.ws, env.cfg).watermark == "B2"
    # The newest row deleted: the source's maximum falls back below the mark, which stays.
    execute("DELETE FROM t WHERE id = 2")
    assert env.run()[1] == []
    assert c.configurations.get(env.ws, env.cfg).watermark == "B2"
    execute("INSERT INTO t VALUES (3, 'c3')")
    assert env.run()[1] == [3]
