"""A worker's idle PostgreSQL sessions serve the next run of the same connection (issue 17),
and nothing of a run's session state reaches the next run: SET parameters, temporary tables
and open transactions are gone, a broken session is replaced, a failed run's session is
closed, and an export chain run by one worker connects once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from egress.container import Container
from egress.domain.export import RequestStatus
from egress.domain.identity import Principal, Subject
from egress.domain.paging import PageRequest
from egress.sources.postgresql import PostgresSettings, PostgresSource
from egress.sources.session_cache import SessionCache
from tests.conftest import PgDatabase, make_settings
from tests.support.migrated import migrate
from tests.support.policy import policy_for


def _source(pg_db: PgDatabase, tmp_path: Path, cache: SessionCache, **extra: Any) -> PostgresSource:
    settings = PostgresSettings(host="127.0.0.1", database=pg_db.name, user="postgres", **extra)
    source = PostgresSource(settings, {}, policy_for(tmp_path))
    source.reuse_sessions(cache, "connection-1")
    return source


def _pid(source: PostgresSource) -> int:
    with source._idle.use() as conn:  # the run's session, as its calls get it
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def test_the_next_run_reuses_the_session_without_its_state(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    cache = SessionCache()
    first = _source(pg_db, tmp_path, cache)
    with first._idle.use() as conn:
        conn.execute("SET work_mem = '1234kB'")
        conn.execute("SET TIME ZONE 'Asia/Tokyo'")
        conn.execute("SET default_transaction_read_only = off")
        conn.execute("CREATE TEMP TABLE leaked (x int)")
        conn.execute("SELECT pg_advisory_lock(42)")
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
    first.close()
    assert len(cache) == 1

    second = _source(pg_db, tmp_path, cache)
    with second._idle.use() as conn:
        assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] == pid  # type: ignore[index]
        assert conn.execute("SHOW work_mem").fetchone()[0] != "1234kB"  # type: ignore[index]
        assert conn.execute("SHOW TimeZone").fetchone()[0] == "UTC"  # type: ignore[index]
        assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"  # type: ignore[index]
        assert conn.execute("SELECT to_regclass('pg_temp.leaked')").fetchone()[0] is None  # type: ignore[index]
        locks = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = %s", (pid,)
        ).fetchone()
        assert locks is not None and locks[0] == 0
    second.close()
    cache.close()
    assert len(cache) == 0


def test_a_reused_session_is_reset_and_set_up_in_one_round_trip(
    pg_db: PgDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = SessionCache()
    first = _source(pg_db, tmp_path, cache)
    pid = _pid(first)
    first.close()
    sent: list[str] = []
    execute = psycopg.Connection.execute

    def counted(self: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", counted)
    second = _source(pg_db, tmp_path, cache)
    conn = second._idle.take()
    monkeypatch.undo()
    assert len(sent) == 1 and sent[0].startswith("CLOSE ALL;")
    assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] == pid  # type: ignore[index]
    assert conn.execute("SHOW TimeZone").fetchone()[0] == "UTC"  # type: ignore[index]
    second._idle.put(conn)
    second.close()
    cache.close()


def test_a_session_serves_many_runs_that_repeat_their_statements(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    """psycopg would prepare a statement run often enough in a session (the reset's own
    DISCARD ALL too), and DISCARD ALL drops the server's side of it."""
    cache = SessionCache()
    pids = set()
    for _ in range(8):
        source = _source(pg_db, tmp_path, cache)
        pids.add(_pid(source))
        source.close()
    assert len(pids) == 1
    cache.close()


def test_a_session_left_in_a_transaction_is_never_reused(pg_db: PgDatabase, tmp_path: Path) -> None:
    cache = SessionCache()
    first = _source(pg_db, tmp_path, cache)
    conn = first._idle.take()
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
    conn.execute("BEGIN")
    conn.execute("SELECT 1")
    first._idle.put(conn)  # a call that left its transaction open: closed
    first.close()
    assert len(cache) == 0
    second = _source(pg_db, tmp_path, cache)
    assert _pid(second) != pid
    second.close()
    cache.close()


def test_a_broken_session_is_replaced_and_the_run_goes_on(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    cache = SessionCache()
    first = _source(pg_db, tmp_path, cache)
    pid = _pid(first)
    first.close()
    with pg_db.connect() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    second = _source(pg_db, tmp_path, cache)
    assert _pid(second) != pid
    second.check()
    second.close()
    cache.close()


def test_a_failed_runs_session_and_another_connections_are_not_reused(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    cache = SessionCache()
    failed = _source(pg_db, tmp_path, cache)
    _pid(failed)
    failed.drop_sessions()
    failed.close()
    assert len(cache) == 0

    first = _source(pg_db, tmp_path, cache)
    pid = _pid(first)
    first.close()
    other = _source(pg_db, tmp_path, cache, connect_timeout=7)  # other settings: another key
    assert _pid(other) != pid
    other.close()
    assert len(cache) == 2
    cache.close()


def test_an_interrupt_after_a_run_ended_does_not_reach_the_next_run(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    cache = SessionCache()
    first = _source(pg_db, tmp_path, cache)
    pid = _pid(first)
    first.close()
    second = _source(pg_db, tmp_path, cache)
    assert _pid(second) == pid
    first.interrupt()  # a cancel that came for the run that already ended
    second.check()
    assert _pid(second) == pid
    second.close()
    cache.close()


def test_an_export_chain_run_by_one_worker_connects_once(
    tmp_path: Path, pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = make_settings(tmp_path, None, heartbeat_s=0.1, poll_s=0.05, export_job_limit=40)
    s.ensure_data_dir()
    migrate(s.resolved_database_url)
    c = Container.build(s)
    ws = c.workspaces.ensure_workspace("firm")
    p = Principal(ws, "editor", Subject("user", "id-ann", "ann"))
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, label text NOT NULL)")
        conn.execute("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g")
    settings = {"host": "127.0.0.1", "port": 5432, "database": pg_db.name, "user": "postgres"}
    record = c.connections.create(ws, "pg", "postgresql", settings, None)
    c.services.catalog.discover(ws, record.id)
    page = c.templates.list_page(ws, record.id, PageRequest(0, 100)).items
    obj = "t-" + next(t.id for t in page if t.name == "public.items")
    connects: list[int] = []
    connect = PostgresSource._psycopg

    def counted(self: PostgresSource) -> Any:
        connects.append(1)
        return connect(self)

    monkeypatch.setattr(PostgresSource, "_psycopg", counted)
    worker = c.worker()
    ids: list[int] = []
    cursor = None
    for fmt in ("csv", "jsonl", "csv"):  # the COPY path and the Arrow path share the session
        view = c.services.exports.export(p, ws, obj, cursor, fmt, None)
        assert worker.run_once()
        done = c.services.exports.get(p, view.request_id, "http://egress.test/")
        assert done.status is RequestStatus.COMPLETED, done
        record_ = c.services.exports.file(done.file_url.rsplit("/", 1)[-1])  # type: ignore[union-attr]
        text = b"".join(c.storage.stream(record_.storage_key)).decode()
        if fmt == "csv":
            ids += [int(line.split(",")[0]) for line in text.splitlines()[1:]]
        else:
            ids += [json.loads(line)["id"] for line in text.splitlines()]
        cursor = done.next_cursor
    assert cursor is None
    assert ids == list(range(1, 101))
    assert len(connects) == 1
    worker.stop(1)
    c.engine.dispose()
