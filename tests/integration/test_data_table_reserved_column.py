"""A source column named ``_egress_id``, the hidden row id of a data table without a primary
key: a configuration or extract that would load it into a data table is refused when it is
saved (422 on fields), and a run of one saved before that rule fails naming it, loading
nothing. Before 2026-12-04 an upsert table loaded it and then hid it from its rows and
exports, and an append load failed with an internal DuplicateColumnError."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from egress.container import Container
from egress.domain.errors import Invalid
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from egress.services.extracts import NewExtract
from tests.support.factories import (
    assert_faces_refuse_loading,
    submitted_configuration,
    warehouse_container,
)

_n = itertools.count()

RESERVED = (
    "column '_egress_id' cannot be loaded into a data table: '_egress_id' is the name of a"
    " data table's hidden row id (its rows and exports leave it out); leave it out with"
    " fields, or rename it in the source (e.g. a SQL template's AS)"
)


@pytest.fixture(params=["sqlite", "pg"])
def c(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    pg_factory = request.getfixturevalue("pg_factory") if request.param == "pg" else None
    with warehouse_container(request.param, tmp_path / "c", pg_factory) as container:
        yield container


def _template(c: Container, tmp_path: Path, column: str = "_egress_id") -> tuple[str, str]:
    path = tmp_path / f"src{next(_n)}.db"
    with sqlite3.connect(path) as db:
        db.execute(f'CREATE TABLE t (id INTEGER PRIMARY KEY, "{column}" INTEGER, v TEXT)')
        db.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, 1000 + i, f"v{i}") for i in (1, 2)])
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, f"src{next(_n)}", "sqlite", {"path": str(path)}, None)
    c.services.catalog.discover(ws, conn.id)
    return ws, c.templates.list_page(ws, conn.id, PageRequest(0, 10)).items[0].id


def _run(c: Container, ws: str, cfg: str) -> Any:
    execution, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    return c.executions.get(ws, cfg, execution.id).latest


@pytest.mark.parametrize("mode", ["upsert", "append"])
def test_a_column_named_as_the_row_id_is_refused(c: Container, tmp_path: Path, mode: str) -> None:
    ws, tpl = _template(c, tmp_path)
    destination = {"type": "dataTable", "dataTable": f"t_{mode}", "mode": mode}
    with pytest.raises(Invalid) as refused:
        submitted_configuration(c, ws, tpl, f"all_{mode}", destination=destination)
    assert (refused.value.errors[0].loc, refused.value.errors[0].msg) == (
        ("body", "fields"),
        RESERVED,
    )
    # Left out with fields, the others load.
    cfg = submitted_configuration(
        c, ws, tpl, f"some_{mode}", destination=destination, fields=["id", "v"]
    )
    assert _run(c, ws, cfg).status is RunStatus.COMPLETED
    table = c.data_tables.find(ws, f"t_{mode}")
    assert table is not None and [f.name for f in table.fields] == ["id", "v"]
    # A configuration saved before the rule: its run fails naming the column, loading nothing.
    c.configurations.update(ws, cfg, {"fields": None})
    run = _run(c, ws, cfg)
    assert (run.status, run.error_message) == (RunStatus.FAILED, RESERVED)
    rows = c.services.data_tables.rows_page(ws, table.id, 10, None).rows
    assert rows == [{"id": 1, "v": "v1"}, {"id": 2, "v": "v2"}]
    with c.warehouse.engine.connect() as w:
        columns = [col["name"] for col in sa.inspect(w).get_columns(table.physical_name)]
    assert "_egress_id" not in columns or (mode == "append" and columns[0] == "_egress_id")


def test_a_run_of_an_older_configuration_records_no_table(c: Container, tmp_path: Path) -> None:
    ws, tpl = _template(c, tmp_path)
    destination = {"type": "dataTable", "dataTable": "never", "mode": "upsert"}
    cfg = submitted_configuration(c, ws, tpl, "never", destination=destination, fields=["id"])
    c.configurations.update(ws, cfg, {"fields": None})  # as saved before the rule
    run = _run(c, ws, cfg)
    assert (run.status, run.error_message) == (RunStatus.FAILED, RESERVED)
    assert c.data_tables.find(ws, "never") is None


def test_an_extract_reading_it_is_refused(c: Container, tmp_path: Path) -> None:
    ws, tpl = _template(c, tmp_path)
    new = NewExtract(
        title="with_row_id",
        template_id=tpl,
        accounts=["main"],
        fields=None,
        conditions=None,
        additional_params=None,
    )
    with pytest.raises(Invalid) as refused:
        c.services.extracts.create(ws, new)
    assert (refused.value.errors[0].loc, refused.value.errors[0].msg) == (
        ("body", "fields"),
        RESERVED,
    )


def test_another_letter_case_is_refused_on_sqlite_only(c: Container, tmp_path: Path) -> None:
    """SQLite's column names are case-insensitive: ``_EGRESS_ID`` is the row id there; a
    PostgreSQL warehouse keeps it apart and loads it, in an append table too."""
    ws, tpl = _template(c, tmp_path, "_EGRESS_ID")
    destination = {"type": "dataTable", "dataTable": "upper", "mode": "append"}
    if c.warehouse.backend == "sqlite":
        with pytest.raises(Invalid) as refused:
            submitted_configuration(c, ws, tpl, "upper", destination=destination)
        assert refused.value.errors[0].msg == (
            "column '_EGRESS_ID' cannot be loaded into a data table: '_egress_id' is the name"
            " of a data table's hidden row id (its rows and exports leave it out), in any"
            " letter case in a SQLite warehouse; leave it out with fields, or rename it in the"
            " source (e.g. a SQL template's AS)"
        )
        return
    cfg = submitted_configuration(c, ws, tpl, "upper", destination=destination)
    assert _run(c, ws, cfg).status is RunStatus.COMPLETED
    table = c.data_tables.find(ws, "upper")
    assert table is not None
    rows = c.services.data_tables.rows_page(ws, table.id, 10, None).rows
    assert rows == [
        {"id": 1, "_EGRESS_ID": 1001, "v": "v1"},
        {"id": 2, "_EGRESS_ID": 1002, "v": "v2"},
    ]


def test_the_faces_refuse_it_naming_it(tmp_path: Path) -> None:
    """Seed 001 answers with 400 (as any invalid input), the native API with 422."""
    assert_faces_refuse_loading(tmp_path, "acc/r.csv", "id,_egress_id", RESERVED)
