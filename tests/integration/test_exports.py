"""Bulk export (seed 003) through the services and a real worker: cursor chains over a real
PostgreSQL table, keyset semantics under concurrent inserts, cursors that are not ours, one
active job per user under racing requests, signed file links against an injected clock, the
retention task, progress while running, and a worker killed mid-job."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import egress.engine.export
import egress.engine.runner
from egress.container import Container
from egress.domain.audit import AuditFilter, AuditObject
from egress.domain.errors import BadRequest, Busy, Forbidden, Invalid, NotFound
from egress.domain.export import RequestStatus
from egress.domain.identity import Principal, Subject
from egress.domain.paging import KeysetCursor, PageRequest
from egress.domain.plan import ReadPlan
from egress.engine.control import RunControl
from egress.services.exports import RequestView
from egress.sources import Source
from egress.sources.base import Rendering
from egress.sources.postgresql import PostgresSource
from tests.conftest import PgDatabase, make_settings
from tests.support.factories import submitted_configuration
from tests.support.migrated import migrate

CHAIN = 250_001


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _container(tmp_path: Path, url: str | None = None, **settings: Any) -> Container:
    s = make_settings(tmp_path, url, heartbeat_s=0.1, poll_s=0.05, **settings)
    s.ensure_data_dir()
    migrate(s.resolved_database_url)
    return Container.build(s, clock=settings.pop("clock", None) or Clock())


def _user(ws: str, name: str = "ann") -> Principal:
    return Principal(ws, "editor", Subject("user", f"id-{name}", name))


def _pg_object(c: Container, db: PgDatabase, ws: str, rows: int) -> str:
    with db.connect() as conn:
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, label text NOT NULL)")
        conn.execute(
            "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, %s) g", (rows,)
        )
    settings = {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"}
    conn_rec = c.connections.create(ws, "pg", "postgresql", settings, None)
    c.services.catalog.discover(ws, conn_rec.id)
    tpl = next(
        t
        for t in c.templates.list_page(ws, conn_rec.id, PageRequest(0, 100)).items
        if t.name == "public.items"
    )
    return f"t-{tpl.id}"


def _run(c: Container, p: Principal, view: RequestView) -> RequestView:
    assert c.worker().run_once()
    done = c.services.exports.get(p, view.request_id, "http://egress.test/")
    assert done.status is RequestStatus.COMPLETED, done
    return done


def _lines(c: Container, p: Principal, view: RequestView) -> list[dict[str, Any]]:
    record = c.services.exports.file(view.file_url.rsplit("/", 1)[-1])  # type: ignore[union-attr]
    data = b"".join(c.storage.stream(record.storage_key))
    return [json.loads(line) for line in data.decode().splitlines()]


def test_a_chain_of_250001_objects_takes_three_jobs_and_includes_later_keys(
    tmp_path: Path, pg_db: PgDatabase
) -> None:
    c = _container(tmp_path)
    ws = c.workspaces.ensure_workspace("firm")
    p = _user(ws)
    obj = _pg_object(c, pg_db, ws, CHAIN)
    seen: list[int] = []
    totals: list[int] = []
    cursor = None
    while True:
        done = _run(c, p, c.services.exports.export(p, ws, obj, cursor, "jsonl", None))
        lines = _lines(c, p, done)
        assert done.total == len(lines)
        assert all(set(line) == {"id", "label"} for line in lines)  # every field, each line
        seen += [line["id"] for line in lines]
        totals.append(len(lines))
        if len(totals) == 1:
            # Inserted after the chain began: a key beyond the position is exported, one
            # below it (already passed) is not.
            with pg_db.connect() as conn:
                conn.execute("INSERT INTO items VALUES (300000, 'late'), (0, 'early')")
        cursor = done.next_cursor
        if cursor is None:
            break
    assert totals == [100_000, 100_000, 50_002]
    assert len(seen) == len(set(seen))  # no duplicates
    assert set(seen) == set(range(1, CHAIN + 1)) | {300_000}
    assert seen == sorted(seen)


def test_the_limit_is_a_setting_and_the_last_job_has_no_next_cursor(
    tmp_path: Path, pg_db: PgDatabase
) -> None:
    c = _container(tmp_path, export_job_limit=4)
    ws = c.workspaces.ensure_workspace("firm")
    p = _user(ws)
    obj = _pg_object(c, pg_db, ws, 8)
    first = _run(c, p, c.services.exports.export(p, ws, obj, None, "csv", ["label"]))
    assert first.total == 4 and first.next_cursor is not None
    record = c.services.exports.file(first.file_url.rsplit("/", 1)[-1])  # type: ignore[union-attr]
    text = b"".join(c.storage.stream(record.storage_key)).decode()
    assert text.splitlines() == ['"label"', '"item 1"', '"item 2"', '"item 3"', '"item 4"']
    last = _run(c, p, c.services.exports.export(p, ws, obj, first.next_cursor, "jsonl", None))
    assert [line["id"] for line in _lines(c, p, last)] == [5, 6, 7, 8]
    assert last.next_cursor is None  # exactly at the end: no empty job after it
    # Nothing to export is still a completed job with a file: total 0.
    with pg_db.connect() as conn:
        conn.execute("DELETE FROM items")
    empty = _run(c, p, c.services.exports.export(p, ws, obj, None, "csv", None))
    assert (empty.total, empty.next_cursor) == (0, None)
    record = c.services.exports.file(empty.file_url.rsplit("/", 1)[-1])  # type: ignore[union-attr]
    assert b"".join(c.storage.stream(record.storage_key)) == b'"id","label"\n'


def test_cursors_that_are_not_this_objects_are_400(tmp_path: Path, pg_db: PgDatabase) -> None:
    c = _container(tmp_path, export_job_limit=2)
    ws = c.workspaces.ensure_workspace("firm")
    other_ws = c.workspaces.ensure_workspace("other")
    p = _user(ws)
    obj = _pg_object(c, pg_db, ws, 5)
    cursor = _run(c, p, c.services.exports.export(p, ws, obj, None, "jsonl", None)).next_cursor
    assert cursor is not None
    key_id, payload, mac = cursor.split(".")
    tampered = f"{key_id}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{mac}"
    for bad in (tampered, "garbage", f"{key_id}.{payload}.{mac[::-1]}", cursor + "x"):
        with pytest.raises(BadRequest) as caught:
            c.services.exports.export(p, ws, obj, bad, "jsonl", None)
        assert caught.value.errors[0].loc == ("body", "cursor")
    # Authentic, but issued for another object (a data-table cursor, or another workspace's).
    other = c.services.data_tables._encode

    with pytest.raises(BadRequest):
        c.services.exports.export(p, ws, obj, other(KeysetCursor("x", [2])), "jsonl", None)
    foreign = c.signing.signer("export-cursor").sign(
        json.dumps({"table": f"{other_ws}/{obj}", "after": [2]}).encode()
    )
    with pytest.raises(BadRequest):
        c.services.exports.export(p, ws, obj, foreign, "jsonl", None)
    # The genuine cursor still works, and pages on.
    nxt = _run(c, p, c.services.exports.export(p, ws, obj, cursor, "jsonl", None))
    assert [line["id"] for line in _lines(c, p, nxt)] == [3, 4]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_twenty_simultaneous_exports_make_exactly_one_job(
    tmp_path: Path, pg_db: PgDatabase, pg_factory: Any, backend: str
) -> None:
    url = None if backend == "sqlite" else pg_factory("egress_meta").sqlalchemy_url
    c = _container(tmp_path, url)
    ws = c.workspaces.ensure_workspace("firm")
    p = _user(ws)
    obj = _pg_object(c, pg_db, ws, 3)

    def post(_: int) -> str:
        try:
            return c.services.exports.export(p, ws, obj, None, "jsonl", None).request_id
        except Busy as busy:
            return f"busy:{busy.detail}:{busy.retry_after_s}"

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(post, range(20)))
    created = [a for a in answers if not a.startswith("busy:")]
    assert len(created) == 1
    refused = [a for a in answers if a.startswith("busy:")]
    assert len(refused) == 19 and all(created[0] in a and a.endswith(":5") for a in refused)
    # Another user is not held up; once the job is done the first user may export again.
    bob = _user(ws, "bob")
    c.services.exports.export(bob, ws, obj, None, "jsonl", None)
    while c.worker().run_once():
        pass
    c.services.exports.export(p, ws, obj, None, "jsonl", None)


def test_objects_other_firms_and_keys_the_source_does_not_enforce(
    tmp_path: Path, pg_db: PgDatabase
) -> None:
    c = _container(tmp_path)
    ws = c.workspaces.ensure_workspace("firm")
    p = _user(ws)
    obj = _pg_object(c, pg_db, ws, 3)
    with pg_db.connect() as conn:
        conn.execute("CREATE VIEW items_view AS SELECT * FROM items")
    conn_id = c.templates.get(ws, obj.removeprefix("t-")).connection_id
    c.services.catalog.discover(ws, conn_id)
    listed = c.services.exports.objects(p, ws)
    assert [(o.name, o.kind, o.key, o.title) for o in listed] == [
        (obj, "template", ["id"], "public.items")
    ]
    view = next(
        t for t in c.templates.list_page(ws, conn_id, PageRequest(0, 100)).items if "view" in t.name
    )
    with pytest.raises(Invalid, match="no primary key"):
        c.services.exports.export(p, ws, f"t-{view.id}", None, "jsonl", None)
    with pytest.raises(NotFound):
        c.services.exports.export(p, ws, "t-nope", None, "jsonl", None)
    with pytest.raises(NotFound):
        c.services.exports.export(p, ws, "no_such_table", None, "jsonl", None)
    other = c.workspaces.ensure_workspace("other")
    with pytest.raises(NotFound):
        c.services.exports.objects(p, other)
    with pytest.raises(NotFound):
        c.services.exports.export(p, other, obj, None, "jsonl", None)
    with pytest.raises(Invalid, match="unknown field"):
        c.services.exports.export(p, ws, obj, None, "jsonl", ["nope"])


def test_file_links_expire_with_the_clock_and_retention_deletes_the_file(
    tmp_path: Path, pg_db: PgDatabase
) -> None:
    clock = Clock()
    c = _container(tmp_path, clock=clock, export_url_ttl_s=3600)
    ws = c.workspaces.ensure_workspace("firm")
    p = _user(ws)
    obj = _pg_object(c, pg_db, ws, 3)
    done = _run(c, p, c.services.exports.export(p, ws, obj, None, "jsonl", None))
    assert done.file_url is not None and done.file_url.startswith(
        "http://egress.test/export-files/"
    )
    token = done.file_url.rsplit("/", 1)[-1]
    key = c.services.exports.file(token).storage_key
    # The URL is the same whenever it is read: it expires at completedAt + TTL.
    clock.now += timedelta(minutes=59)
    assert (
        c.services.exports.get(p, done.request_id, "http://egress.test/").file_url == done.file_url
    )
    assert c.services.exports.delete_expired() == 0
    clock.now += timedelta(minutes=1)
    with pytest.raises(Forbidden, match="expired"):
        c.services.exports.file(token)
    with pytest.raises(Forbidden, match="not valid"):
        c.services.exports.file(token[:-3] + "abc")
    assert c.storage.exists(key)
    assert c.services.exports.delete_expired() == 1
    assert not c.storage.exists(key)
    assert c.services.exports.delete_expired() == 0


class _SlowSource:
    """A real source whose batches arrive slowly, so a job can be watched while it runs."""

    def __init__(self, inner: Source, delay: float) -> None:
        self._inner = inner
        self._delay = delay

    def read(
        self, plan: ReadPlan, batch_rows: int, batch_bytes: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        for batch in self._inner.read(plan, batch_rows, batch_bytes):
            for start in range(0, batch.num_rows, 10):  # ADBC sizes its batches by bytes
                time.sleep(self._delay)
                yield batch.slice(start, 10)

    def can_copy(self, plan: ReadPlan, rendering: Rendering) -> bool:
        return False  # the slow batches are the Arrow path's: no COPY past them

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_progress_is_visible_while_a_job_runs_on_a_slow_source(
    tmp_path: Path, pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = _container(tmp_path, batch_rows=10, worker_concurrency=1)
    ws = c.workspaces.ensure_workspace("firm")
    p = _user(ws)
    obj = _pg_object(c, pg_db, ws, 100)
    real = egress.engine.runner.open_source
    monkeypatch.setattr(egress.engine.runner, "open_source", lambda *a: _SlowSource(real(*a), 0.15))
    view = c.services.exports.export(p, ws, obj, None, "jsonl", None)
    worker = c.worker()
    worker.start()
    try:
        seen: list[tuple[str, int | None]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = c.services.exports.get(p, view.request_id, "http://x/")
            seen.append((now.status.value, now.processed))
            if now.status is RequestStatus.COMPLETED:
                break
            time.sleep(0.05)
    finally:
        worker.stop(5)
    progress = [n for s, n in seen if s == "InProgress"]
    assert any(0 < n < 100 for n in progress if n is not None), seen
    assert progress == sorted(progress)  # it only goes up
    assert seen[-1][0] == "Completed"


class _Killed(BaseException):
    """The worker process dying: nothing after it runs, nothing is recorded."""


def test_a_worker_killed_mid_job_leaves_the_next_attempt_the_same_file(
    tmp_path: Path, pg_db: PgDatabase
) -> None:
    clock = Clock()
    c = _container(tmp_path, clock=clock, batch_rows=50, export_job_limit=300)
    ws = c.workspaces.ensure_workspace("firm")
    p = _user(ws)
    obj = _pg_object(c, pg_db, ws, 1000)
    reference = _run(c, p, c.services.exports.export(p, ws, obj, None, "csv", None))
    expected = c.services.exports.file(reference.file_url.rsplit("/", 1)[-1])  # type: ignore[union-attr]

    view = c.services.exports.export(p, ws, obj, None, "csv", None)
    claimed = c.run_queue.claim("doomed", timedelta(seconds=30), clock())
    assert claimed is not None and claimed.kind.value == "export"

    class Dying(RunControl):
        def report(self, processed: int) -> None:
            super().report(processed)
            if processed >= 100:  # two batches written to the temporary file
                raise _Killed

    with pytest.raises(_Killed):
        c.runner().execute(claimed, Dying())
    mid = c.services.exports.get(p, view.request_id, "http://x/")
    assert mid.status is RequestStatus.IN_PROGRESS
    clock.now += timedelta(seconds=31)
    assert c.worker().reap_once().requeued == 1
    assert c.services.exports.get(p, view.request_id, "http://x/").status is (
        RequestStatus.IN_PROGRESS  # waiting for its next attempt
    )
    done = _run(c, p, view)
    got = c.services.exports.file(done.file_url.rsplit("/", 1)[-1])  # type: ignore[union-attr]
    assert (got.sha256, got.size_bytes, got.record_count) == (
        expected.sha256,
        expected.size_bytes,
        300,
    )
    assert c.requests.get(ws, view.request_id).run.attempt == 2


def test_cancel_and_the_list_of_my_requests(tmp_path: Path, pg_db: PgDatabase) -> None:
    c = _container(tmp_path)
    ws = c.workspaces.ensure_workspace("firm")
    p = _user(ws)
    obj = _pg_object(c, pg_db, ws, 3)
    first = _run(c, p, c.services.exports.export(p, ws, obj, None, "jsonl", None))
    c.clock.now += timedelta(seconds=1)  # type: ignore[attr-defined]
    second = c.services.exports.export(p, ws, obj, None, "parquet", None)
    cancelled = c.services.exports.cancel(p, second.request_id)
    assert (cancelled.status, cancelled.error) == (RequestStatus.FAILED, "cancelled")
    mine = c.services.exports.list_page(p, None, PageRequest(0, 10), "http://x/")
    assert [v.request_id for v in mine.items] == [second.request_id, first.request_id]
    failed = c.services.exports.list_page(p, RequestStatus.FAILED, PageRequest(0, 10), "http://x/")
    assert [v.request_id for v in failed.items] == [second.request_id]
    assert c.services.exports.list_page(_user(ws, "bob"), None, PageRequest(0, 10), "x").total == 0
    # On the audit trail: both requests, the cancel, and the file through its signed link.
    token = first.file_url.rsplit("/", 1)[-1]  # type: ignore[union-attr]
    name = c.services.exports.file(token, "10.0.0.9").file_name
    admin = Principal(ws, "admin", Subject("token", "t", "ops"))
    events = c.services.audit.list_page(admin, AuditFilter(), PageRequest(0, 10)).items
    ann, link = Subject("user", "id-ann", "ann"), Subject("user", "id-ann", "")
    one, two = (AuditObject("export", v.request_id) for v in (first, second))
    assert [(e.action, e.actor, e.object, e.source_address, e.detail) for e in events[::-1]] == [
        ("export.create", ann, one, None, {"object": obj, "format": "jsonl"}),
        ("export.create", ann, two, None, {"object": obj, "format": "parquet"}),
        ("export.cancel", ann, two, None, {}),
        ("file.download", link, one, "10.0.0.9", {"file": name, "via": "signed-link"}),
    ]


@pytest.mark.parametrize(
    ("mode", "warehouse"),
    [
        ("upsert", "sqlite"),
        ("append", "sqlite"),
        ("append", "postgresql"),
    ],
)
def test_a_data_table_exports_in_key_order_or_by_its_row_id(
    tmp_path: Path, pg_factory: Any, mode: str, warehouse: str
) -> None:
    url = None if warehouse == "sqlite" else pg_factory("egress_wh").sqlalchemy_url
    c = _container(tmp_path, export_job_limit=2, warehouse_url=url)
    ws = c.workspaces.ensure_workspace("firm")
    p = _user(ws)
    src = tmp_path / "sources" / "codes.db"
    src.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(src) as db:
        db.execute("CREATE TABLE codes (code TEXT PRIMARY KEY, label TEXT)")
        db.executemany("INSERT INTO codes VALUES (?, ?)", [("c", "see"), ("a", "ay"), ("b", "bee")])
    conn_rec = c.connections.create(ws, "codes", "sqlite", {"path": str(src)}, None)
    c.services.catalog.discover(ws, conn_rec.id)
    tpl = c.templates.list_page(ws, conn_rec.id, PageRequest(0, 10)).items[0]
    destination = {"type": "dataTable", "dataTable": "codes", "mode": mode}
    cfg = submitted_configuration(c, ws, tpl.id, "load", destination=destination)
    c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    key = ["code"] if mode == "upsert" else ["_egress_id"]
    listed = c.services.exports.objects(p, ws)
    assert ("codes", "dataTable", key, 3) in [
        (o.name, o.kind, o.key, o.approximate_count) for o in listed
    ]
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        done = _run(c, p, c.services.exports.export(p, ws, "codes", cursor, "jsonl", None))
        rows += _lines(c, p, done)
        cursor = done.next_cursor
        if cursor is None:
            break
    expected = ["a", "b", "c"] if mode == "upsert" else ["c", "a", "b"]  # key or load order
    assert [r["code"] for r in rows] == expected
    assert all(set(r) == {"code", "label"} for r in rows)  # the hidden row id is not written


# Nine rows each (three full jobs of three: the last ends exactly at the last object). The
# COPY path parses integer and text keys back from its last row; a date key is bounded by a
# query before the COPY.
KEYED_TABLES = {
    "mixed": (
        "CREATE TABLE mixed (day date, n int, label text, amount numeric(8,2),"
        " at timestamptz, ok boolean, PRIMARY KEY (day, n))",
        "INSERT INTO mixed SELECT date '2026-01-01' + g / 3, g % 3, 'x, \"' || g,"
        " g * 1.25, timestamptz '2026-01-01 00:00+00' + g * interval '1 hour', g % 2 = 0"
        " FROM generate_series(1, 8) g",
        "INSERT INTO mixed VALUES ('2026-03-01', 0, NULL, NULL, NULL, NULL)",
    ),
    "words": (
        "CREATE TABLE words (w text PRIMARY KEY, n int)",
        "INSERT INTO words SELECT w, ordinality FROM unnest(ARRAY['', ' lead', 'a,b',"
        " 'q\"uote\"', E'new\\nline', E'cr\\rlf\\n', 'back\\slash', 'ünï', 'z'])"
        " WITH ORDINALITY AS w",
    ),
    "nums": (
        "CREATE TABLE nums (k bigint, part smallint, label text, PRIMARY KEY (part, k))",
        "INSERT INTO nums SELECT 9000000000000000000 - g, g % 2, NULL FROM generate_series(1, 9) g",
    ),
}


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("table", sorted(KEYED_TABLES))
def test_postgresql_text_is_the_same_through_copy_and_through_arrow(
    tmp_path: Path, pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch, table: str, fmt: str
) -> None:
    """The COPY path (slice and its end fixed in a snapshot) writes the bytes and cursors
    Arrow writes, CSV and JSONL, and the last job, exactly full, has no next cursor."""
    c = _container(tmp_path, export_job_limit=3)
    ws = c.workspaces.ensure_workspace("firm")
    p = _user(ws)
    with pg_db.connect() as conn:
        for statement in KEYED_TABLES[table]:
            conn.execute(statement)
    items = _pg_object(c, pg_db, ws, 0)  # discovers the connection's tables
    conn_id = c.templates.get(ws, items.removeprefix("t-")).connection_id
    tpl = next(
        t
        for t in c.templates.list_page(ws, conn_id, PageRequest(0, 100)).items
        if t.name == f"public.{table}"
    )

    def chain() -> list[tuple[bytes, int, str | None]]:
        files, cursor = [], None
        while True:
            done = _run(c, p, c.services.exports.export(p, ws, f"t-{tpl.id}", cursor, fmt, None))
            f = c.services.exports.file(done.file_url.rsplit("/", 1)[-1])  # type: ignore[union-attr]
            after = c.requests.get(ws, done.request_id).result
            data = b"".join(c.storage.stream(f.storage_key))
            files.append((data, f.record_count, json.dumps(after)))
            cursor = done.next_cursor
            if cursor is None:
                return files

    real = PostgresSource.copy_keyset
    slices: list[Any] = []

    def counted(self: PostgresSource, plan: ReadPlan, *args: Any, **kwargs: Any) -> Any:
        slices.append(real(self, plan, *args, **kwargs))
        return slices[-1]

    monkeypatch.setattr(PostgresSource, "copy_keyset", counted)
    fast = chain()
    assert [(rows, last is None, more) for rows, last, more in slices] == [
        (3, False, True),
        (3, False, True),
        (3, False, False),
    ]  # every job took the COPY path
    monkeypatch.setattr(egress.engine.export, "KeysetSource", type("Never", (), {}))
    slow = chain()
    assert [n for _, n, _ in fast] == [3, 3, 3]
    assert fast == slow
    assert json.loads(fast[-1][2]) == {"after": None}
    # Every object once, in key order, read back from the three files.
    if fmt == "csv":
        rows = [r for data, _, _ in fast for r in list(csv.reader(io.StringIO(data.decode())))[1:]]
    else:
        rows = [list(json.loads(x).values()) for data, _, _ in fast for x in data.splitlines()]
    if table == "words":
        with pg_db.connect() as conn:
            keys = [w for (w,) in conn.execute("SELECT w FROM words ORDER BY w")]
        assert [r[0] for r in rows] == keys and len(keys) == 9
    assert len(rows) == 9


def test_a_dead_attempts_file_still_in_the_store_makes_the_next_attempt_retry(
    tmp_path: Path, pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attempt published its file and died before recording it; the store refused the
    reaper's delete, so the file is a leftover when attempt 2 publishes the same name (one
    name per request). Attempt 2 tried again later instead of failing with an internal error."""
    clock = Clock()
    c = _container(tmp_path, clock=clock, retry_base_s=10, retry_max_s=10)
    ws = c.workspaces.ensure_workspace("firm")
    p = _user(ws)
    view = c.services.exports.export(p, ws, _pg_object(c, pg_db, ws, 10), None, "jsonl", None)
    claimed = c.run_queue.claim("doomed", timedelta(seconds=30), clock())
    assert claimed is not None

    def killed(*_: Any) -> bool:
        raise _Killed

    with monkeypatch.context() as m:
        m.setattr(c.run_queue, "finish", killed)
        with pytest.raises(_Killed):
            c.runner().execute(claimed, RunControl())
    clock.now += timedelta(seconds=31)
    worker = c.worker()
    with monkeypatch.context() as m:

        def refused(*_: Any) -> None:
            raise OSError("the store is down")

        m.setattr(c.storage, "delete", refused)
        assert worker.reap_once().requeued == 1
    assert worker.run_once()  # before the leftover's next try is due
    run = c.requests.get(ws, view.request_id).run
    assert (run.status.value, run.attempt) == ("PENDING", 3)
    assert run.error_message is not None and "still in the store" in run.error_message
    clock.now += timedelta(seconds=11)  # past the retry's backoff and the leftover's pause
    worker.reap_once()
    done = _run(c, p, view)
    assert [line["id"] for line in _lines(c, p, done)] == list(range(1, 11))
