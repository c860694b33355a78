"""A data table whose first load failed is listed with no rows (README), and made by the first
load that succeeds: with that load's columns only, not those of the failed attempt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from egress.container import Container
from egress.domain.export import RequestStatus
from egress.domain.identity import Principal, Subject
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from tests.support.factories import submitted_configuration, warehouse_container


@pytest.fixture(params=["sqlite", "pg"])
def c(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    pg_factory = request.getfixturevalue("pg_factory") if request.param == "pg" else None
    with warehouse_container(request.param, tmp_path / "c", pg_factory) as container:
        yield container


def test_the_first_load_that_succeeds_records_only_its_columns(
    c: Container, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    rows = pa.table(
        {
            "id": pa.array([1, 2], pa.int32()),
            "d": pa.array([0, -735160], pa.int32()).view(pa.date32()),  # -0043-03-15: no load
        }
    )
    pq.write_table(rows, folder / "k.parquet")
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, "files", "files", {"url": folder.as_uri()}, None)
    tpl = c.services.catalog.create_custom_template(
        ws, conn.id, "k", "k.parquet", None, None, None, None
    )
    destination = {"type": "dataTable", "dataTable": "k", "mode": "append"}
    cfg = submitted_configuration(c, ws, tpl.id, "k", destination=destination)

    def run() -> RunStatus:
        execution, _ = c.services.executions.trigger(ws, cfg, {})
        assert c.worker().run_once()
        return c.executions.get(ws, cfg, execution.id).latest.status

    assert run() is RunStatus.FAILED
    table = c.data_tables.list_page(ws, PageRequest(0, 10)).items[0]
    assert (table.name, table.row_count) == ("k", 0)  # listed, with no rows
    with c.warehouse.engine.connect() as w:  # and no table in the warehouse
        assert not sa.inspect(w).has_table(table.physical_name)
    c.configurations.update(ws, cfg, {"fields": ["id"]})  # the failing column left out
    assert run() is RunStatus.COMPLETED
    table = c.data_tables.list_page(ws, PageRequest(0, 10)).items[0]
    # The table has one column, and says so (it said 'd' too, the failed attempt's).
    assert ([f.name for f in table.fields], table.row_count) == (["id"], 2)
    assert c.services.data_tables.rows_page(ws, table.id, 10, None).rows == [{"id": 1}, {"id": 2}]
    # Its export reads the columns it has (it failed: internal error (KeyError): 'd').
    editor = Principal(ws, "editor", Subject("user", "id-ann", "ann"))
    view = c.services.exports.export(editor, ws, "k", None, "jsonl", None)
    assert c.worker().run_once()
    done = c.services.exports.get(editor, view.request_id, "http://egress.test/")
    assert done.status is RequestStatus.COMPLETED, done
