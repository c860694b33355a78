"""A split CSV run on PostgreSQL goes through one COPY whose rows are routed by their split key:
every part byte for byte the Arrow path's part (names, ids, counts too), whatever the values
hold — NULL, the empty text, the text 'null', commas, quotes, newlines, non-ASCII, arrays
(whose JSON holds commas and quotes)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress.container import Container
from egress.domain.errors import Invalid
from egress.domain.paging import PageRequest
from egress.domain.split import sub_extract_id
from egress.domain.status import RunStatus
from egress.sinks import split
from egress.sources.postgresql import copy_native, copy_split
from egress.sources.postgresql.source import PostgresSource
from tests.conftest import PgDatabase, make_settings
from tests.support.factories import submitted_configuration
from tests.support.migrated import migrate

TABLE = """CREATE TABLE t (
    id int PRIMARY KEY, region text, code bigint, small smallint, flag boolean,
    tag varchar(8), c char(4), note text, ts timestamp, d date, u uuid, fa float8[],
    ta timestamp[], "egress split key" text)"""  # the name the COPY gives its key column
AWKWARD = [
    "EU",
    None,
    "",
    "null",
    "a,b",
    'x"y',
    'a"",b',
    '"',
    "multi\nline",
    "\\.",
    "Zürich/CH",
    "  ",
    "a b",
    "a_b",
    "v",
]

STARTED = re.compile(r"_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d")  # a run's start in its file names


def _rows() -> list[tuple[Any, ...]]:
    rows = []
    for i in range(1, 3001):
        region = AWKWARD[i % len(AWKWARD)]
        code = None if i % 7 == 0 else (i % 5) - 2
        flag = None if i % 11 == 0 else i % 2 == 0
        note = 'he said "hi",\nthen left' if i % 3 == 0 else f"n{i}"
        uid = f"00000000-0000-0000-0000-{i % 3:012d}"
        rows.append(
            (
                i,
                region,
                code,
                i % 4,
                flag,
                f"t{i % 3}",
                "ab",
                note,
                f"2026-01-0{1 + i % 5} 10:00",
                f"2026-02-0{1 + i % 3}",
                uid,
                None if i % 13 == 0 else [i * 0.5, 1e15, float("nan"), None],
                [f"2026-01-0{1 + i % 5} 10:00:0{i % 10}.5", None],
                f"k{i % 2}",
            )
        )
    return rows


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    settings = make_settings(tmp_path, max_split_parts=20)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings)
    yield container
    container.engine.dispose()


@pytest.fixture
def pg(pg_db: PgDatabase) -> PgDatabase:
    with pg_db.connect() as conn, conn.cursor() as cur:
        cur.execute(TABLE)
        cur.executemany(
            "INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            _rows(),
        )
    return pg_db


def _template(c: Container, ws: str, pg: PgDatabase) -> str:
    settings = {"host": "127.0.0.1", "port": 5432, "database": pg.name, "user": "postgres"}
    conn = c.connections.create(ws, "pg", "postgresql", settings, None)
    c.services.catalog.discover(ws, conn.id)
    page = c.templates.list_page(ws, conn.id, PageRequest(0, 100))
    return next(t.id for t in page.items if t.name.endswith("t"))


def _parts(
    c: Container, ws: str, tpl: str, split_by: str, fields: list[str] | None, name: str
) -> dict[str, Any]:
    """Run a split CSV configuration once: each part's (value, name, count, bytes) by id."""
    extra = {"fields": fields} if fields else {}
    cfg = submitted_configuration(c, ws, tpl, name, format="csv", split_by=split_by, **extra)
    ex, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, ex.id).latest
    assert run.status is RunStatus.COMPLETED, run.error_message
    return {
        f.sub_extract_id: (
            f.sub_extract_value,
            STARTED.sub("", f.file_name.replace(name, "N")),
            f.record_count,
            b"".join(c.storage.stream(f.storage_key)),
        )
        for f in run.files
    }


def copy_splits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The split fields of the runs that go through ``copy_csv_split`` from now on."""
    copied: list[str] = []
    real = PostgresSource.copy_csv_split

    def spy(self: PostgresSource, *args: Any, **kwargs: Any) -> Any:
        copied.append(args[1])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(PostgresSource, "copy_csv_split", spy)
    return copied


@pytest.mark.parametrize(
    ("split_by", "fields"),
    [
        ("region", None),
        ("code", None),
        ("small", None),
        ("flag", None),
        ("tag", None),
        ("c", None),
        ("u", None),
        ("region", ["id", "note", "ts", "d"]),  # the split field left out of the files
    ],
)
def test_copy_split_writes_exactly_the_arrow_paths_parts(
    c: Container, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch, split_by: str, fields: Any
) -> None:
    ws = c.workspaces.ensure_workspace("t")
    tpl = _template(c, ws, pg)
    copied = copy_splits(monkeypatch)
    by_copy = _parts(c, ws, tpl, split_by, fields, "by_copy")
    assert copied == [split_by]
    monkeypatch.setattr(PostgresSource, "can_copy_csv_split", lambda *_: False)
    by_arrow = _parts(c, ws, tpl, split_by, fields, "by_arrow")
    assert copied == [split_by]
    assert by_copy == by_arrow
    assert sum(p[2] for p in by_copy.values()) == 3000
    if split_by == "region":
        assert {p[0] for p in by_copy.values()} == set(AWKWARD)


def test_copy_split_fails_on_too_many_parts_and_publishes_nothing(
    c: Container, pg: PgDatabase
) -> None:
    ws = c.workspaces.ensure_workspace("t")
    cfg = submitted_configuration(c, ws, _template(c, ws, pg), "many", format="csv", split_by="id")
    ex, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, ex.id).latest
    assert run.status is RunStatus.FAILED
    assert "more than 20 distinct values" in (run.error_message or "")
    assert run.files == []
    assert list(c.storage.list()) == []


def test_an_incremental_split_copies_each_window_in_its_snapshot(
    c: Container, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window's mark and the split COPY share the snapshot's session (a held psycopg one)."""
    held: list[bool] = []
    real = PostgresSource.copy_csv_split

    def spy(self: PostgresSource, *args: Any, **kwargs: Any) -> Any:
        held.append(self._held is not None)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(PostgresSource, "copy_csv_split", spy)
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(
        ws,
        "pg_inc",
        "postgresql",
        {"host": "127.0.0.1", "port": 5432, "database": pg.name, "user": "postgres"},
        None,
    )
    tpl = c.services.catalog.create_custom_template(
        ws, conn.id, "t_tpl", "public.t", None, ["id"], "id", None
    )
    cfg = submitted_configuration(c, ws, tpl.id, "inc", format="csv", split_by="code")
    c.configurations.update(ws, cfg, {"incremental_lag": 0.0})

    def run() -> dict[str | None, int]:
        ex, _ = c.services.executions.trigger(ws, cfg, {"extractOnlyNew": True})
        assert c.worker().run_once()
        latest = c.executions.get(ws, cfg, ex.id).latest
        assert latest.status in (RunStatus.COMPLETED, RunStatus.COMPLETED_NO_DATA)
        return {f.sub_extract_value: f.record_count for f in latest.files}

    first = run()
    assert sum(first.values()) == 3000 and set(first) == {None, "-2", "-1", "0", "1", "2"}
    with pg.connect() as db:
        db.execute("INSERT INTO t (id, code) VALUES (3001, 7), (3002, NULL)")
    assert run() == {"7": 1, None: 1}
    assert held == [True, True]


LATE = ["late", "latex", 'late,"1"', "", "late\r\n2", "x" * 20 + ',\n"' + "y" * 20]  # '' came early


@pytest.mark.parametrize("reader", ["native", "python"])
@pytest.mark.parametrize(
    ("split_by", "fields"),
    [
        ("region", None),  # the key is the row's 2nd field (id, region, …)
        ("code", None),
        ("region", ["id", "note", "code"]),  # left out of the files: a leading key, cut off
        ("code", ["note", "region", "code"]),  # the last field, after quoted newlines
    ],
)
def test_copy_split_routes_block_by_block_exactly_as_the_arrow_path(
    c: Container,
    pg: PgDatabase,
    monkeypatch: pytest.MonkeyPatch,
    split_by: str,
    fields: list[str] | None,
    reader: str,
) -> None:
    """Blocks of 2 KiB: every block mixes quoted keys (commas, quotes, newlines, the empty text)
    with plain ones and NULL, and keys that share a part's file; keys first come in late
    blocks, in rows longer than a block (and than the C loop's buffer of two blocks); the key
    is a field of the row, or a leading one of its own. Rows read in C and, where that was not
    built, in Python."""
    monkeypatch.setattr(copy_split, "BLOCK_BYTES", 2048)
    if reader == "python":
        monkeypatch.setattr(copy_native, "NATIVE", None)
    else:
        assert copy_native.NATIVE is not None, "the C loop was not built (make install)"
    with pg.connect() as db, db.cursor() as cur:
        cur.executemany(
            "INSERT INTO t (id, region, code, note) VALUES (%s, %s, %s, %s)",
            [
                (3001 + i, LATE[i % len(LATE)], 100 + i % 3, f"{i:02d}" * (1100 + 1500 * (i % 9)))
                for i in range(40)
            ],
        )
    ws = c.workspaces.ensure_workspace("t")
    tpl = _template(c, ws, pg)
    by_copy = _parts(c, ws, tpl, split_by, fields, "by_copy")
    monkeypatch.setattr(PostgresSource, "can_copy_csv_split", lambda *_: False)
    assert by_copy == _parts(c, ws, tpl, split_by, fields, "by_arrow")
    assert sum(p[2] for p in by_copy.values()) == 3040
    if split_by == "region":
        assert {p[0] for p in by_copy.values()} == {*AWKWARD, *LATE}


# Same 40-character slug and the same first 6 hex digits of sha256: one sub-extract id before,
# and the COPY routed both values' rows to the first value's file.
LONG_A = "product-category-electronics-item-000000000822"
LONG_B = "product-category-electronics-item-000000002892"


def _sku_template(c: Container, ws: str, pg_db: PgDatabase) -> str:
    with pg_db.connect() as db, db.cursor() as cur:
        cur.execute("CREATE TABLE sku (id int PRIMARY KEY, k text, note text)")
        cur.executemany(
            "INSERT INTO sku VALUES (%s, %s, %s)",
            [(i, [LONG_A, LONG_B, None][(i - 1) % 3], f"n{i}") for i in range(1, 10)],
        )
    settings = {"host": "127.0.0.1", "port": 5432, "database": pg_db.name, "user": "postgres"}
    conn = c.connections.create(ws, "pg", "postgresql", settings, None)
    c.services.catalog.discover(ws, conn.id)
    page = c.templates.list_page(ws, conn.id, PageRequest(0, 100))
    return next(t.id for t in page.items if t.name == "public.sku")


def _csv(data: bytes) -> tuple[list[str], list[list[str]]]:
    """A CSV file's header and its rows, sorted."""
    header, *rows = csv.reader(io.StringIO(data.decode()))
    return header, sorted(rows)


def test_copy_split_gives_values_whose_ids_used_to_coincide_their_own_parts(
    c: Container, pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = c.workspaces.ensure_workspace("t")
    tpl = _sku_template(c, ws, pg_db)
    copied = copy_splits(monkeypatch)
    parts = _parts(c, ws, tpl, "k", None, "sku")
    assert copied == ["k"]
    files = {p[0]: (p[2], *_csv(p[3])) for p in parts.values()}
    header = ["id", "k", "note"]
    assert files == {
        LONG_A: (3, header, [["1", LONG_A, "n1"], ["4", LONG_A, "n4"], ["7", LONG_A, "n7"]]),
        LONG_B: (3, header, [["2", LONG_B, "n2"], ["5", LONG_B, "n5"], ["8", LONG_B, "n8"]]),
        None: (3, header, [["3", "", "n3"], ["6", "", "n6"], ["9", "", "n9"]]),
    }
    assert {pid: p[0] for pid, p in parts.items()} == {
        sub_extract_id(v): v for v in (LONG_A, LONG_B, None)
    }


def test_copy_split_fails_naming_both_values_that_got_one_id(
    c: Container, pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last check (ids are made never to coincide), raised while the COPY routes rows."""
    monkeypatch.setattr(split, "sub_extract_id", lambda value: "same-000000")
    ws = c.workspaces.ensure_workspace("t")
    cfg = submitted_configuration(
        c, ws, _sku_template(c, ws, pg_db), "sku", format="csv", split_by="k"
    )
    copied = copy_splits(monkeypatch)
    ex, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, ex.id).latest
    assert copied == ["k"]
    assert run.status is RunStatus.FAILED
    assert f"{LONG_A!r} and {LONG_B!r}" in (run.error_message or "")
    assert run.files == [] and list(c.storage.list()) == []


def test_a_list_field_cannot_split_a_run(c: Container, pg: PgDatabase) -> None:
    ws = c.workspaces.ensure_workspace("t")
    tpl = _template(c, ws, pg)
    with pytest.raises(Invalid) as refused:
        submitted_configuration(c, ws, tpl, "lists", format="csv", split_by="fa")
    (problem,) = refused.value.errors
    assert problem.loc == ("body", "split_by")
    assert problem.msg == (
        "cannot split by 'fa': a list<float64> column holds lists of values; split by a "
        "column of single values"
    )
    # A configuration saved before the rule (its data conversion failed mid-run): the run
    # fails saying why, and publishes nothing.
    cfg = submitted_configuration(c, ws, tpl, "older", format="csv", split_by="region")
    c.configurations.update(ws, cfg, {"split_by": "fa"})
    ex, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, ex.id).latest
    assert (run.status, run.error_message) == (RunStatus.FAILED, problem.msg)
    assert list(c.storage.list()) == []


def test_a_split_value_beyond_the_years_python_names_fails_the_run_saying_which(
    c: Container, pg: PgDatabase
) -> None:
    with pg.connect() as conn:
        conn.execute("CREATE TABLE bc (id int PRIMARY KEY, ts timestamptz)")
        conn.execute("INSERT INTO bc VALUES (1, '2026-01-01 00:00Z'), (2, '0044-03-15 12:00Z BC')")
    ws = c.workspaces.ensure_workspace("t")
    _template(c, ws, pg)
    conn_id = c.connections.list_page(ws, PageRequest(0, 10)).items[0].id
    page = c.templates.list_page(ws, conn_id, PageRequest(0, 100))
    tpl = next(t.id for t in page.items if t.name.endswith("bc"))
    cfg = submitted_configuration(c, ws, tpl, "bc", format="csv", split_by="ts")
    ex, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, ex.id).latest
    assert (run.status, run.error_message) == (
        RunStatus.FAILED,
        "split by 'ts': the value -0043-03-15 12:00:00.000000Z is outside the years 1-9999 "
        "that a sub-extract can be named by; filter it out (whereClause) or split by "
        "another field",
    )
    assert list(c.storage.list()) == []
