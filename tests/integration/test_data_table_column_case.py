"""Columns whose names differ only in letter case (``id`` and ``ID``): a SQLite warehouse holds
them as one column, so a configuration loading both into a data table is refused when it is
saved (422 naming them), and a run of one saved before that rule fails naming them without
recording a data table. A PostgreSQL warehouse keeps them apart and loads them; file outputs
hold both on any warehouse."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from egress.container import Container
from egress.db.engine import make_engine
from egress.domain.catalog import ColumnInfo
from egress.domain.errors import Invalid
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from egress.services.extracts import NewExtract
from egress.sinks.data_table import LoadError, Warehouse
from tests.support.factories import (
    assert_faces_refuse_loading,
    sqlite_container,
    submitted_configuration,
    warehouse_container,
)

_n = itertools.count()

CLASH = (
    "columns 'id' and 'ID' differ only in letter case, which a data table cannot hold apart in"
    " a SQLite warehouse (SQLite's column names are case-insensitive): leave one out with"
    " fields, or use a PostgreSQL warehouse (EGRESS_WAREHOUSE_URL)"
)


@pytest.fixture(params=["sqlite", "pg"])
def c(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    pg_factory = request.getfixturevalue("pg_factory") if request.param == "pg" else None
    with warehouse_container(request.param, tmp_path / "c", pg_factory) as container:
        yield container


def _odd_template(c: Container, tmp_path: Path, text: str = "id,ID,v\n1,10,a\n2,20,b\n") -> str:
    """A files connection whose account ``odd`` holds ``o.csv``; its template's id."""
    folder = tmp_path / f"files{next(_n)}"
    (folder / "odd").mkdir(parents=True)
    (folder / "odd" / "o.csv").write_text(text)
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, f"files{next(_n)}", "files", {"url": folder.as_uri()}, None)
    c.services.catalog.discover(ws, conn.id)
    templates = c.templates.list_page(ws, conn.id, PageRequest(0, 10)).items
    return next(t.id for t in templates if t.name == "odd/o.csv")


def _extract(tpl: str, fields: list[str] | None = None) -> NewExtract:
    return NewExtract(
        title="odd_cols",
        template_id=tpl,
        accounts=["odd"],
        fields=fields,
        conditions=None,
        additional_params=None,
    )


def _run(c: Container, ws: str, cfg: str) -> Any:
    execution, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    return c.executions.get(ws, cfg, execution.id).latest


def _warehouse_tables(c: Container) -> list[str]:
    with c.warehouse.engine.connect() as conn:
        return [t for t in sa.inspect(conn).get_table_names() if t.startswith("dt_")]


def _rows(c: Container, ws: str, name: str) -> list[dict[str, Any]]:
    table = next(t for t in c.data_tables.list_page(ws, PageRequest(0, 10)).items if t.name == name)
    rows = c.services.data_tables.rows_page(ws, table.id, 10, None).rows
    return [{k: v for k, v in r.items() if k != "__insert_date"} for r in rows]


def test_an_extract_reading_both_is_refused_on_sqlite_and_loaded_on_postgresql(
    c: Container, tmp_path: Path
) -> None:
    ws = c.workspaces.ensure_workspace("t")
    tpl = _odd_template(c, tmp_path)
    if c.warehouse.engine.dialect.name == "sqlite":
        with pytest.raises(Invalid) as refused:
            c.services.extracts.create(ws, _extract(tpl))
        assert refused.value.errors[0].msg == CLASH
        assert refused.value.errors[0].loc == ("body", "fields")
        assert c.configurations.list_page(ws, None, PageRequest(0, 10)).items == []
        # Leaving one out loads the other.
        made = c.services.extracts.create(ws, _extract(tpl, ["id", "v"]))
        assert _run(c, ws, made.configuration.id).status is RunStatus.COMPLETED
        assert _rows(c, ws, "odd_cols") == [
            {"id": 1, "v": "a", "account_id": "odd", "account_name": "odd"},
            {"id": 2, "v": "b", "account_id": "odd", "account_name": "odd"},
        ]
        return
    # PostgreSQL keeps quoted names apart: both columns are loaded, each with its values.
    made = c.services.extracts.create(ws, _extract(tpl))
    assert _run(c, ws, made.configuration.id).status is RunStatus.COMPLETED
    assert _rows(c, ws, "odd_cols") == [
        {"id": 1, "ID": 10, "v": "a", "account_id": "odd", "account_name": "odd"},
        {"id": 2, "ID": 20, "v": "b", "account_id": "odd", "account_name": "odd"},
    ]


def test_a_source_column_against_a_system_column_is_refused_too(tmp_path: Path) -> None:
    with sqlite_container(tmp_path / "c") as c:
        ws = c.workspaces.ensure_workspace("t")
        tpl = _odd_template(c, tmp_path, "Account_ID,v\n1,a\n")
        with pytest.raises(Invalid) as refused:
            c.services.extracts.create(ws, _extract(tpl))
        assert refused.value.errors[0].msg.startswith(
            "columns 'Account_ID' and 'account_id' differ only in letter case"
        )
        # Without the system columns (a native configuration) it loads.
        destination = {"type": "dataTable", "dataTable": "plain", "mode": "append"}
        cfg = submitted_configuration(c, ws, tpl, "plain", destination=destination)
        assert _run(c, ws, cfg).status is RunStatus.COMPLETED


def test_a_native_configuration_is_refused_when_saved_and_changed(tmp_path: Path) -> None:
    with sqlite_container(tmp_path / "c") as c:
        ws = c.workspaces.ensure_workspace("t")
        tpl = _odd_template(c, tmp_path)
        destination = {"type": "dataTable", "dataTable": "odd", "mode": "append"}
        with pytest.raises(Invalid, match=re.escape(f"body.fields: {CLASH}")):
            submitted_configuration(c, ws, tpl, "odd", destination=destination)
        cfg = submitted_configuration(c, ws, tpl, "odd", destination=destination, fields=["ID"])
        with pytest.raises(Invalid, match=re.escape(f"body.fields: {CLASH}")):
            c.services.configurations.patch(ws, cfg, {"fields": None})
        # A file of the same template holds both: nothing changed for storage destinations.
        storage = submitted_configuration(c, ws, tpl, "odd_file")
        assert _run(c, ws, storage).status is RunStatus.COMPLETED


def test_a_run_saved_before_the_rule_fails_naming_them_and_records_no_table(
    c: Container, tmp_path: Path
) -> None:
    ws = c.workspaces.ensure_workspace("t")
    tpl = _odd_template(c, tmp_path)
    made = c.services.extracts.create(ws, _extract(tpl, ["id", "v"]))
    cfg = made.configuration.id
    c.configurations.update(ws, cfg, {"fields": None})  # as saved before the rule
    run = _run(c, ws, cfg)
    if c.warehouse.engine.dialect.name != "sqlite":
        assert run.status is RunStatus.COMPLETED
        return
    assert run.status is RunStatus.FAILED
    assert run.error_message == CLASH
    # No data table is listed (nor made in the warehouse): none was ever loaded.
    assert c.data_tables.list_page(ws, PageRequest(0, 10)).items == []
    assert _warehouse_tables(c) == []
    assert c.services.extracts.get(ws, cfg).data_table_id is None
    # Left out, the next run loads the table as a first load.
    c.configurations.update(ws, cfg, {"fields": ["ID", "v"]})
    assert _run(c, ws, cfg).status is RunStatus.COMPLETED
    assert [r["ID"] for r in _rows(c, ws, "odd_cols")] == [10, 20]
    table = c.data_tables.list_page(ws, PageRequest(0, 10)).items[0]
    assert [f.name for f in table.fields] == [
        "ID",
        "v",
        "account_id",
        "account_name",
        "__insert_date",
    ]


def test_a_column_differing_from_one_the_table_has_fails_the_run(
    c: Container, tmp_path: Path
) -> None:
    """The table holds ``id``; a configuration loading ``ID`` into it (saved, as the table's
    columns are the warehouse's to know) fails its run naming both, and the table is as it
    was."""
    ws = c.workspaces.ensure_workspace("t")
    tpl = _odd_template(c, tmp_path)
    destination = {"type": "dataTable", "dataTable": "odd", "mode": "append"}
    first = submitted_configuration(c, ws, tpl, "first", destination=destination, fields=["id"])
    assert _run(c, ws, first).status is RunStatus.COMPLETED
    second = submitted_configuration(c, ws, tpl, "second", destination=destination, fields=["ID"])
    run = _run(c, ws, second)
    if c.warehouse.engine.dialect.name != "sqlite":
        assert run.status is RunStatus.COMPLETED
        assert len(_rows(c, ws, "odd")) == 4
        return
    assert run.status is RunStatus.FAILED
    assert run.error_message == CLASH
    assert _rows(c, ws, "odd") == [{"id": 1}, {"id": 2}]
    table = c.data_tables.list_page(ws, PageRequest(0, 10)).items[0]
    assert ([f.name for f in table.fields], table.row_count) == (["id"], 2)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_file_outputs_hold_both_columns(tmp_path: Path, fmt: str) -> None:
    with sqlite_container(tmp_path / "c") as c:
        ws = c.workspaces.ensure_workspace("t")
        tpl = _odd_template(c, tmp_path)
        cfg = submitted_configuration(c, ws, tpl, "odd_file", format=fmt)
        run = _run(c, ws, cfg)
        assert run.status is RunStatus.COMPLETED and run.record_count == 2
        data = b"".join(c.storage.stream(run.files[0].storage_key))
        if fmt == "csv":
            assert list(csv.reader(io.StringIO(data.decode())))[:2] == [
                ["id", "ID", "v"],
                ["1", "10", "a"],
            ]
        elif fmt == "parquet":
            table = pq.read_table(pa.BufferReader(data))
            assert table.column_names == ["id", "ID", "v"]
            assert table.column("ID").to_pylist() == [10, 20]
        else:
            assert data.splitlines()[0] == b'{"id":1,"ID":10,"v":"a"}'


def test_the_faces_refuse_it_naming_them(tmp_path: Path) -> None:
    """Seed 001 answers its invalid input with 400 (as it does any), the native API with 422;
    both name the field and the columns."""
    assert_faces_refuse_loading(tmp_path, "odd/o.csv", "id,ID", CLASH)


def test_the_warehouse_refuses_such_a_load_itself(tmp_path: Path) -> None:
    """Whoever calls it: nothing is made, and a table keeps its columns and rows."""
    warehouse = Warehouse(make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}"))

    def load(run: str, names: list[str]) -> None:
        fields = [ColumnInfo(n, "int64") for n in names]
        batch = pa.record_batch({n: pa.array([1], pa.int64()) for n in names})
        warehouse.load(run, "t", fields, [], [], "append", [batch], lambda: None, lambda _: None)

    with pytest.raises(LoadError) as refused:
        load("r1", ["id", "ID"])
    assert str(refused.value) == CLASH
    assert not warehouse.has_table("t")
    load("r2", ["id"])
    with pytest.raises(LoadError) as refused:
        load("r3", ["id", "ID"])
    assert str(refused.value) == CLASH
    with pytest.raises(LoadError, match=r"^columns '_egress_id' and '_EGRESS_ID' differ"):
        load("r4", ["_EGRESS_ID"])  # the hidden row id of a table without a key
    assert warehouse.rows("t", ["_egress_id"], ["int64"], None, 10) == [{"_egress_id": 1, "id": 1}]
    warehouse.engine.dispose()
