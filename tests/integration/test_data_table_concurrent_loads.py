"""Data-table loads that overlap: the catalogue records every column each committed load made,
whichever load records last; first loads on a fresh PostgreSQL warehouse create its tables
without racing each other."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from egress.container import Container
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from tests.support.factories import submitted_configuration, warehouse_container

_n = itertools.count()


@pytest.fixture(params=["sqlite", "pg"])
def c(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    pg_factory = request.getfixturevalue("pg_factory") if request.param == "pg" else None
    with warehouse_container(request.param, tmp_path / "c", pg_factory) as container:
        yield container


def _template(c: Container, tmp_path: Path) -> tuple[str, str]:
    """Workspace and template of a SQLite table t (id, a, b) of 30 rows."""
    path = tmp_path / f"src{next(_n)}.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT)")
        db.executemany(
            "INSERT INTO t VALUES (?, ?, ?)", [(i, f"a{i}", f"b{i}") for i in range(1, 31)]
        )
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, f"src{next(_n)}", "sqlite", {"path": str(path)}, None)
    c.services.catalog.discover(ws, conn.id)
    tpl = c.templates.list_page(ws, conn.id, PageRequest(0, 10)).items[0]
    return ws, tpl.id


def _config(c: Container, ws: str, tpl: str, table: str, fields: list[str] | None) -> str:
    destination = {"type": "dataTable", "dataTable": table, "mode": "upsert"}
    return submitted_configuration(
        c, ws, tpl, f"load_{next(_n)}", destination=destination, fields=fields
    )


def _status(c: Container, ws: str, cfg: str, execution: str) -> Any:
    return c.executions.get(ws, cfg, execution).latest


def test_two_loads_adding_columns_both_stay_recorded(
    c: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loads with fields [id, a] and [id, b] of a table loaded with [id] overlap: the second
    reads the catalogue (fields [id]) before the first loads and records, then loads and
    records itself. Its record kept only its own new column before 2026-12-04, and a bulk
    export of the table left out the other's (its rows API showed it: the warehouse table
    had it)."""
    ws, tpl = _template(c, tmp_path)
    first = _config(c, ws, tpl, "tt", ["id"])
    execution, _ = c.services.executions.trigger(ws, first, {})
    assert c.worker().run_once()
    assert _status(c, ws, first, execution.id).status is RunStatus.COMPLETED
    with_a, with_b = _config(c, ws, tpl, "tt", ["id", "a"]), _config(c, ws, tpl, "tt", ["id", "b"])
    run_a, _ = c.services.executions.trigger(ws, with_a, {})
    run_b, _ = c.services.executions.trigger(ws, with_b, {})

    real_load = c.warehouse.load
    calls: list[list[str]] = []

    def load(**kw: Any) -> Any:
        # The first run to load has read the catalogue already: the other run loads and
        # records its column meanwhile, then this one goes on.
        calls.append([f.name for f in kw["fields"]])
        if len(calls) == 1:
            other = threading.Thread(target=lambda: c.worker("other").run_once())
            other.start()
            other.join()
        return real_load(**kw)

    monkeypatch.setattr(c.warehouse, "load", load)
    assert c.worker().run_once()
    assert len(calls) == 2
    assert _status(c, ws, with_a, run_a.id).status is RunStatus.COMPLETED
    assert _status(c, ws, with_b, run_b.id).status is RunStatus.COMPLETED
    table = c.data_tables.find(ws, "tt")
    assert table is not None
    assert sorted(f.name for f in table.fields) == ["a", "b", "id"]
    with c.warehouse.engine.connect() as w:
        physical = {col["name"] for col in sa.inspect(w).get_columns(table.physical_name)}
    assert physical == {"id", "a", "b"}
    rows = c.services.data_tables.rows_page(ws, table.id, 1, None).rows
    assert rows == [{"id": 1, "a": "a1", "b": "b1"}]


def _files_template(c: Container, tmp_path: Path, text: str, key: list[str] | None) -> str:
    folder = tmp_path / f"in{next(_n)}"
    folder.mkdir()
    (folder / "r.csv").write_text(text)
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, f"files{next(_n)}", "files", {"url": folder.as_uri()}, None)
    tpl = c.services.catalog.create_custom_template(
        ws, conn.id, f"r{next(_n)}", "r.csv", None, key, None, None
    )
    return tpl.id


@pytest.mark.parametrize("mode", ["upsert", "append"])
def test_column_names_with_percent_load(c: Container, tmp_path: Path, mode: str) -> None:
    """Any character works in a column name (README): ``%`` too, on a PostgreSQL warehouse,
    where every load of such a column failed before 2026-12-04 (``internal error
    (UndefinedColumn): column "rate%%" … does not exist``): when the table is made, merged,
    and when a later load adds such a column."""
    ws = c.workspaces.ensure_workspace("t")
    text = 'id,rate%,"100%% a:b?"\n1,5,x\n2,7,y\n'
    tpl = _files_template(c, tmp_path, text, ["id"] if mode == "upsert" else None)
    destination = {"type": "dataTable", "dataTable": f"rates_{mode}", "mode": mode}
    first = submitted_configuration(
        c, ws, tpl, f"r{next(_n)}", destination=destination, fields=["id", "rate%"]
    )
    again = submitted_configuration(c, ws, tpl, f"r{next(_n)}", destination=destination)
    for cfg in (first, again):  # the second adds a column, and merges into the rows
        execution, _ = c.services.executions.trigger(ws, cfg, {})
        assert c.worker().run_once()
        run = _status(c, ws, cfg, execution.id)
        assert run.status is RunStatus.COMPLETED, run.error_message
    table = c.data_tables.find(ws, f"rates_{mode}")
    assert table is not None
    assert [f.name for f in table.fields] == ["id", "rate%", "100%% a:b?"]
    rows = c.services.data_tables.rows_page(ws, table.id, 10, None).rows
    both = [{"id": 1, "rate%": 5, "100%% a:b?": "x"}, {"id": 2, "rate%": 7, "100%% a:b?": "y"}]
    if mode == "upsert":
        assert rows == both
    else:
        assert rows == [{**r, "100%% a:b?": None} for r in both] + both


@pytest.mark.parametrize("tables", ["two tables", "one table", "one new column"])
def test_first_loads_at_once_both_complete(
    c: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tables: str
) -> None:
    """Two first loads on a fresh warehouse, each inside its transaction before the other
    commits: each waits (up to 2 s) at its first batch for the other to reach its own. Before
    2026-12-04 on PostgreSQL both found no ledger (and no table, loading one table) and one
    run failed: internal error (UniqueViolation) … CREATE TABLE egress_loads (or CREATE TABLE
    dt_…). Two loads adding the same column to a table: one failed, column "a" … already
    exists."""
    ws, tpl = _template(c, tmp_path)
    names = ["first_a", "first_b"] if tables == "two tables" else ["first", "first"]
    if tables != "two tables":  # the ledger is there: the race is on the data table's CREATE
        earlier = _config(c, ws, tpl, "other" if tables == "one table" else "first", ["id"])
        c.services.executions.trigger(ws, earlier, {})
        assert c.worker().run_once()
    configs = [_config(c, ws, tpl, name, ["id", "a"]) for name in names]
    executions = [c.services.executions.trigger(ws, cfg, {})[0].id for cfg in configs]

    real_load = c.warehouse.load
    both = threading.Barrier(2)

    def load(**kw: Any) -> Any:
        def batches() -> Iterator[Any]:
            for i, batch in enumerate(kw["batches"]):
                if i == 0:  # the other is past its first batch too, or waits for this load
                    with contextlib.suppress(threading.BrokenBarrierError):
                        both.wait(timeout=2)
                yield batch

        return real_load(**(kw | {"batches": batches()}))

    monkeypatch.setattr(c.warehouse, "load", load)
    workers = [threading.Thread(target=c.worker(f"w{i}").run_once) for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for cfg, execution in zip(configs, executions, strict=True):
        run = _status(c, ws, cfg, execution)
        assert run.status is RunStatus.COMPLETED, run.error_message
    for name in set(names):
        table = c.data_tables.find(ws, name)
        assert table is not None
        assert ([f.name for f in table.fields], table.row_count) == (["id", "a"], 30)


def test_the_row_count_of_the_last_commit_stays(
    c: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two appends of 30 rows: the first to commit records its count only after the other
    has loaded and recorded 60. Before 2026-12-04 the table was left at rowCount 30."""
    ws, tpl = _template(c, tmp_path)
    destination = {"type": "dataTable", "dataTable": "log", "mode": "append"}
    configs = [
        submitted_configuration(c, ws, tpl, f"log_{i}", destination=destination) for i in (1, 2)
    ]
    for cfg in configs:
        c.services.executions.trigger(ws, cfg, {})
    real_loaded = c.data_tables.loaded
    calls: list[int] = []

    def loaded(*args: Any, **kw: Any) -> None:
        calls.append(1)
        if len(calls) == 1:  # the other run loads and records first
            other = threading.Thread(target=lambda: c.worker("other").run_once())
            other.start()
            other.join()
        real_loaded(*args, **kw)

    monkeypatch.setattr(c.data_tables, "loaded", loaded)
    assert c.worker().run_once()
    assert len(calls) == 2
    table = c.data_tables.find(ws, "log")
    assert table is not None and table.row_count == 60
    assert len(c.services.data_tables.rows_page(ws, table.id, 100, None).rows) == 60
