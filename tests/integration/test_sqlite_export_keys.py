"""A bulk export of a SQLite table pages by its key exactly as SQLite stores it: a chain
delivers every row once, or a job fails naming the key column and why. Before 2026-12-04 a
key without type affinity holding integers, a TIMESTAMP key holding unix seconds, TIMESTAMPTZ
text with UTC offsets, a key whose unique index collates otherwise than its column, and a
PRIMARY KEY holding NULL each lost or repeated rows while every job said Completed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from egress.container import Container
from egress.domain.catalog import ColumnInfo
from egress.domain.export import RequestStatus
from egress.domain.identity import Principal, Subject
from egress.domain.paging import PageRequest
from egress.engine.job import RunFailure
from egress.services.exports import RequestView
from egress.sources.sqlite import SqliteSettings, SqliteSource
from tests.conftest import make_settings
from tests.support.migrated import migrate
from tests.support.policy import policy_for


def _container(tmp_path: Path, limit: int) -> Container:
    s = make_settings(tmp_path, heartbeat_s=0.1, poll_s=0.05, export_job_limit=limit)
    s.ensure_data_dir()
    migrate(s.resolved_database_url)
    return Container.build(s)


def _user(ws: str) -> Principal:
    return Principal(ws, "editor", Subject("user", "id-ann", "ann"))


def _source(tmp_path: Path, *statements: str, rows: dict[str, list[tuple[Any, ...]]]) -> Path:
    src = tmp_path / "sources" / "s.db"
    src.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(src) as db:
        for sql in statements:
            db.execute(sql)
        for table, values in rows.items():
            marks = ",".join("?" * len(values[0]))
            db.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
    db.close()
    return src


def _object(c: Container, ws: str, src: Path, table: str) -> str:
    conn = c.connections.create(ws, f"src-{table}", "sqlite", {"path": str(src)}, None)
    c.services.catalog.discover(ws, conn.id)
    items = c.templates.list_page(ws, conn.id, PageRequest(0, 100)).items
    return "t-" + next(t.id for t in items if t.name == f"main.{table}")


def _job(c: Container, p: Principal, obj: str, cursor: str | None) -> RequestView:
    view = c.services.exports.export(p, p.workspace_id, obj, cursor, "jsonl", None)
    assert c.worker().run_once()
    return c.services.exports.get(p, view.request_id, "http://egress.test/")


def _chain(c: Container, ws: str, obj: str) -> tuple[list[list[Any]], RequestView]:
    """Every job's ``v`` values, following nextCursor until it is null or a job fails (at
    most 12 jobs), and the last job."""
    p = _user(ws)
    jobs: list[list[Any]] = []
    cursor = None
    for _ in range(12):
        done = _job(c, p, obj, cursor)
        if done.status is not RequestStatus.COMPLETED:
            return jobs, done
        record = c.services.exports.file(done.file_url.rsplit("/", 1)[-1])  # type: ignore[union-attr]
        text = b"".join(c.storage.stream(record.storage_key)).decode()
        jobs.append([json.loads(line)["v"] for line in text.splitlines()])
        cursor = done.next_cursor
        if cursor is None:
            return jobs, done
    raise AssertionError(f"the chain never ended: {jobs}")


def test_a_key_without_declared_type_holding_integers_pages_as_integers(tmp_path: Path) -> None:
    """``id PRIMARY KEY`` is typed string, so the cursor held '3': bound as text, SQLite sorts
    every INTEGER before it and the second job was empty, the chain over."""
    src = _source(
        tmp_path,
        "CREATE TABLE events (id PRIMARY KEY, v INTEGER)",
        "CREATE TABLE reals (id BLOB PRIMARY KEY, v INTEGER)",
        rows={
            "events": [(i * 10, i) for i in range(1, 8)],
            "reals": [(i + 0.5, i) for i in range(1, 6)],
        },
    )
    c = _container(tmp_path, limit=3)
    ws = c.workspaces.ensure_workspace("firm")
    jobs, last = _chain(c, ws, _object(c, ws, src, "events"))
    assert last.status is RequestStatus.COMPLETED, last
    assert jobs == [[1, 2, 3], [4, 5, 6], [7]]


def test_a_key_without_declared_type_holding_numbers_and_text_fails_the_job(
    tmp_path: Path,
) -> None:
    src = _source(
        tmp_path,
        "CREATE TABLE events (id PRIMARY KEY, v INTEGER)",
        rows={"events": [(1, 1), (2, 2), ("3", 3), ("x", 4)]},
    )
    c = _container(tmp_path, limit=3)
    ws = c.workspaces.ensure_workspace("firm")
    jobs, last = _chain(c, ws, _object(c, ws, src, "events"))
    assert jobs == [] and last.status is RequestStatus.FAILED and last.retryable is False
    assert last.error == (
        "this object cannot be exported: its key column 'id' (table main.events) has no "
        "declared type and holds both numbers and text, which SQLite sorts apart (every number "
        "before any text, every text before any BLOB) while the cursor keeps one of them as "
        "text: jobs after the first would skip or repeat rows; declare the column's type (or "
        "store one kind of value in it), or export the table with an extraction"
    )


def test_timestamp_keys_page_as_the_instants_they_are_read_as(tmp_path: Path) -> None:
    """Unix seconds (every INTEGER sorted before the cursor's text: the chain stopped after its
    first job), ISO text with or without 'T' and with UTC offsets (paged in text order, but the
    cursor is the last instant's UTC text: rows came twice, or the same rows forever)."""
    base = 1767225600  # 2026-01-01 00:00:00 UTC
    src = _source(
        tmp_path,
        "CREATE TABLE unix (at TIMESTAMP PRIMARY KEY, v INTEGER)",
        "CREATE TABLE tz (at TIMESTAMPTZ PRIMARY KEY, v INTEGER)",
        rows={
            "unix": [(base + 60 * i, i) for i in range(1, 8)],
            "tz": [
                ("2026-01-01 06:00:00", 2),
                ("2026-01-01 10:00:00+05:00", 1),
                ("2026-01-01T11:00:00", 5),
                ("2026-01-01 07:00:00-03:00", 4),
                (base + 9 * 3600, 3),
                ("2026-01-01 11:30:00Z", 6),
            ],
        },
    )
    c = _container(tmp_path, limit=2)
    ws = c.workspaces.ensure_workspace("firm")
    jobs, last = _chain(c, ws, _object(c, ws, src, "unix"))
    assert last.status is RequestStatus.COMPLETED, last
    assert jobs == [[1, 2], [3, 4], [5, 6], [7]]
    jobs, last = _chain(c, ws, _object(c, ws, src, "tz"))
    assert last.status is RequestStatus.COMPLETED, last
    assert jobs == [[1, 2], [3, 4], [5, 6]]


@pytest.mark.parametrize("limit", [1, 2])
def test_sqlite_text_in_another_date_form_pages_as_its_instant(tmp_path: Path, limit: int) -> None:
    """'T'-separated text: before 2026-12-04 the second job failed (it returned the first
    job's rows again, which the guard caught)."""
    src = _source(
        tmp_path,
        "CREATE TABLE ts (id TIMESTAMP PRIMARY KEY, v INTEGER)",
        rows={
            "ts": [
                ("2026-01-01T00:00:00", 1),
                ("2026-01-01T00:00:01", 2),
                ("2026-01-01T00:00:02", 3),
            ]
        },
    )
    c = _container(tmp_path, limit=limit)
    ws = c.workspaces.ensure_workspace("firm")
    jobs, last = _chain(c, ws, _object(c, ws, src, "ts"))
    assert last.status is RequestStatus.COMPLETED, last
    assert jobs == ([[1], [2], [3]] if limit == 1 else [[1, 2], [3]])


def test_two_forms_of_one_instant_at_a_job_boundary_fail_the_job(tmp_path: Path) -> None:
    src = _source(
        tmp_path,
        "CREATE TABLE tz (at TIMESTAMPTZ PRIMARY KEY, v INTEGER)",
        rows={
            "tz": [
                ("2026-01-01 04:00:00", 1),
                ("2026-01-01 05:00:00", 2),
                ("2026-01-01 10:00:00+05:00", 3),
                ("2026-01-01 06:00:00", 4),
            ]
        },
    )
    c = _container(tmp_path, limit=2)
    ws = c.workspaces.ensure_workspace("firm")
    jobs, last = _chain(c, ws, _object(c, ws, src, "tz"))
    assert jobs == [] and last.status is RequestStatus.FAILED and last.retryable is False
    assert last.error == (
        "two rows of table main.tz read as the same key (2026-01-01T05:00:00+00:00) where the "
        "job would end: the next job, which starts after that key, would skip the second (e.g. "
        "SQLite text of one instant in two forms, '2026-01-01 05:00:00' and '2026-01-01 "
        "10:00:00+05:00'), so this object cannot be paged by its key; export it whole with an "
        "extraction"
    )


def test_a_primary_key_holding_null_fails_the_job(tmp_path: Path) -> None:
    """``(a, b) > (1, NULL)`` is never true: a job ending on a NULL key lost every row after
    it with the same ``a`` (a one-column key: every row after it), and NULL keys repeat."""
    src = _source(
        tmp_path,
        "CREATE TABLE one (k TEXT PRIMARY KEY, v INTEGER)",
        "CREATE TABLE two (a INTEGER, b TEXT, v INTEGER, PRIMARY KEY (a, b))",
        "CREATE TABLE fine (k TEXT PRIMARY KEY, v INTEGER)",
        rows={
            "one": [(None, 1), (None, 2), (None, 3), ("k1", 4), ("k2", 5)],
            "two": [(1, None, 1), (1, None, 2), (1, None, 3), (1, "x", 4), (2, "a", 5)],
            "fine": [("k1", 1), ("k2", 2), ("k3", 3)],
        },
    )
    c = _container(tmp_path, limit=3)
    ws = c.workspaces.ensure_workspace("firm")
    for table, name in (("one", "k"), ("two", "b")):
        jobs, last = _chain(c, ws, _object(c, ws, src, table))
        assert jobs == [] and last.status is RequestStatus.FAILED, (table, last)
        assert last.error == (
            f"this object cannot be exported: its key column {name!r} (table main.{table}) "
            "holds NULL, which SQLite allows in a PRIMARY KEY column other than an INTEGER "
            "PRIMARY KEY: a NULL key compares with no cursor and is no row's alone, so jobs "
            "after it would skip rows; give those rows a key (or declare the column NOT "
            "NULL), or export the table with an extraction"
        )
    # A column that may hold NULL but holds none pages as before.
    jobs, last = _chain(c, ws, _object(c, ws, src, "fine"))
    assert last.status is RequestStatus.COMPLETED and jobs == [[1, 2, 3]]


def test_each_column_of_a_longer_primary_key_is_nullable_in_the_catalog(tmp_path: Path) -> None:
    """Only a PRIMARY KEY of one INTEGER column is the rowid, never NULL."""
    src = _source(
        tmp_path,
        "CREATE TABLE two (a INTEGER, b TEXT, PRIMARY KEY (a, b))",
        "CREATE TABLE one (a INTEGER PRIMARY KEY, b TEXT)",
        rows={},
    )
    found = SqliteSource(SqliteSettings(path=str(src)), {}, policy_for(tmp_path)).catalog()
    columns = {t.name: t.columns for t in found}
    assert columns["two"][0] == ColumnInfo("a", "int64", True)
    assert columns["one"][0] == ColumnInfo("a", "int64", False)


def test_a_key_pages_in_the_collation_its_unique_index_has(tmp_path: Path) -> None:
    """A NOCASE column with a UNIQUE index COLLATE BINARY holds 'b' and 'B': compared as
    NOCASE, the second job skipped 'B' after 'b'."""
    src = _source(
        tmp_path,
        "CREATE TABLE u (code TEXT COLLATE NOCASE NOT NULL, v INTEGER)",
        "CREATE UNIQUE INDEX ux ON u (code COLLATE BINARY)",
        rows={"u": [("a", 0), ("b", 1), ("A", 2), ("B", 3), ("c", 4), ("C", 5)]},
    )
    c = _container(tmp_path, limit=2)
    ws = c.workspaces.ensure_workspace("firm")
    jobs, last = _chain(c, ws, _object(c, ws, src, "u"))
    assert last.status is RequestStatus.COMPLETED, last
    assert jobs == [[2, 3], [5, 0], [1, 4]]  # A B C a b c: binary order


def test_a_job_never_ends_on_a_null_or_a_tied_key() -> None:
    """Any source: the next job starts after the last key, so a NULL in it or a following row
    that reads the same would be skipped."""
    from egress.engine.export import _check_resumable

    _check_resumable("main.t", ["a", "b"], [1, "x"], [1, "y"])
    with pytest.raises(RunFailure, match=r"NULL in its column 'b' \(table main.t\)"):
        _check_resumable("main.t", ["a", "b"], [1, None], [1, "x"])
    with pytest.raises(RunFailure, match=r"two rows of table main.t read as the same key \(1, x\)"):
        _check_resumable("main.t", ["a", "b"], [1, "x"], [1, "x"])


def test_a_job_whose_first_row_is_not_after_its_cursor_fails() -> None:
    """The guard for a source whose stored values do not order as their type (a SQLite
    source's own date text compared as instants no longer trips it)."""
    from datetime import datetime

    from egress.engine.export import _check_advances

    _check_advances([datetime(2026, 1, 1, 0, 0, 1)], [datetime(2026, 1, 1)])
    with pytest.raises(RunFailure) as caught:
        _check_advances([datetime(2026, 1, 1)], [datetime(2026, 1, 1)])
    assert str(caught.value) == (
        "the source returned the key (2026-01-01T00:00:00) again after the job's cursor: the "
        "key column's stored values do not compare as their type (e.g. SQLite text in another "
        "date format than ISO 'YYYY-MM-DD HH:MM:SS'), so this object cannot be paged by its "
        "key; export it whole with an extraction"
    )


def test_longer_keys_of_dates_text_and_times_page_each_row_once(tmp_path: Path) -> None:
    """A date with text under NOCASE in a WITHOUT ROWID table; a time of day (which sqlite3
    could not bind: the second job failed)."""
    src = _source(
        tmp_path,
        "CREATE TABLE dk (day DATE, code TEXT COLLATE NOCASE, v INTEGER,"
        " PRIMARY KEY (day, code)) WITHOUT ROWID",
        "CREATE TABLE tk (at TIME PRIMARY KEY, v INTEGER)",
        rows={
            "dk": [
                ("2026-01-02", "a", 3),
                ("2026-01-01T00:00:00", "B", 2),
                ("2026-01-01", "a", 1),
                ("2026-01-02", "C", 5),
                ("2026-01-02", "b", 4),
            ],
            "tk": [("10:00:00", 1), ("10:00:00.5", 2), ("10:00:01", 3), ("23:59:59", 4)],
        },
    )
    c = _container(tmp_path, limit=2)
    ws = c.workspaces.ensure_workspace("firm")
    jobs, last = _chain(c, ws, _object(c, ws, src, "dk"))
    assert last.status is RequestStatus.COMPLETED, last
    assert jobs == [[1, 2], [3, 4], [5]]
    jobs, last = _chain(c, ws, _object(c, ws, src, "tk"))
    assert last.status is RequestStatus.COMPLETED, last
    assert jobs == [[1, 2], [3, 4]]


def test_canonical_date_text_pages_by_the_column_itself(tmp_path: Path) -> None:
    """Text as Python's sqlite3 writes dates and times sorts as its instants: the job orders by
    the column (an index serves it), and a job that would end between two forms of one instant
    fails as with any other form."""
    src = _source(
        tmp_path,
        "CREATE TABLE ts (at TIMESTAMP PRIMARY KEY, v INTEGER)",
        "CREATE TABLE tie (at TIMESTAMP PRIMARY KEY, v INTEGER)",
        rows={
            "ts": [
                ("2026-01-01", 1),
                ("2026-01-01 00:00:00.500000", 2),
                ("2026-01-01 00:00:01", 3),
                ("2026-01-02", 4),
                ("2026-01-02 00:00:00.000001", 5),
            ],
            "tie": [("2025-12-31 23:00:00", 1), ("2026-01-01", 2), ("2026-01-01 00:00:00", 3)],
        },
    )
    c = _container(tmp_path, limit=2)
    ws = c.workspaces.ensure_workspace("firm")
    jobs, last = _chain(c, ws, _object(c, ws, src, "ts"))
    assert last.status is RequestStatus.COMPLETED, last
    assert jobs == [[1, 2], [3, 4], [5]]
    jobs, last = _chain(c, ws, _object(c, ws, src, "tie"))
    assert jobs == [] and last.status is RequestStatus.FAILED, last
    assert (last.error or "").startswith(
        "two rows of table main.tie read as the same key (2026-01-01T00:00:00) where the job "
        "would end"
    )


def test_a_source_column_named_like_the_hidden_row_id_can_be_chosen(tmp_path: Path) -> None:
    """Only a data table's ``_egress_id`` is hidden; a source table's own column of that name
    is a field like any other (``fields`` naming it was 422 "unknown field(s)")."""
    c = _container(tmp_path, 10)
    ws = c.workspaces.ensure_workspace("t")
    src = _source(
        tmp_path,
        "CREATE TABLE acc (id INTEGER PRIMARY KEY, _egress_id INTEGER, v TEXT)",
        rows={"acc": [(1, 1001, "a"), (2, 1002, "b")]},
    )
    p = _user(ws)
    view = c.services.exports.export(
        p, ws, _object(c, ws, src, "acc"), None, "jsonl", ["_egress_id"]
    )
    assert c.worker().run_once()
    done = c.services.exports.get(p, view.request_id, "http://egress.test/")
    assert done.status is RequestStatus.COMPLETED
    record = c.services.exports.file(done.file_url.rsplit("/", 1)[-1])  # type: ignore[union-attr]
    lines = b"".join(c.storage.stream(record.storage_key)).decode().splitlines()
    assert [json.loads(line) for line in lines] == [{"_egress_id": 1001}, {"_egress_id": 1002}]
