"""A float -0.0 in a data table: a PostgreSQL warehouse keeps its sign; a SQLite warehouse
stores it as 0.0 (README: SQLite writes a REAL without a fractional part as an integer, which
has no negative zero), an equal value — a documented limitation, not a failed load."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from egress.container import Container
from egress.domain.status import RunStatus
from tests.support.factories import submitted_configuration, warehouse_container


@pytest.fixture(params=["sqlite", "pg"])
def c(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    pg_factory = request.getfixturevalue("pg_factory") if request.param == "pg" else None
    with warehouse_container(request.param, tmp_path / "c", pg_factory) as container:
        yield container


@pytest.mark.parametrize("mode", ["upsert", "append"])
def test_negative_zero(c: Container, tmp_path: Path, mode: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    rows = {
        "id": pa.array([1, 2], pa.int64()),
        "x": pa.array([-0.0, 0.0], pa.float64()),
        "y": pa.array([-0.0, 1.0], pa.float32()),
    }
    pq.write_table(pa.table(rows), folder / "z.parquet")
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, "files", "files", {"url": folder.as_uri()}, None)
    tpl = c.services.catalog.create_custom_template(
        ws, conn.id, "z", "z.parquet", None, ["id"], None, None
    )
    destination = {"type": "dataTable", "dataTable": "z", "mode": mode}
    cfg = submitted_configuration(c, ws, tpl.id, "z", destination=destination)
    execution, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    assert c.executions.get(ws, cfg, execution.id).latest.status is RunStatus.COMPLETED
    table = c.data_tables.find(ws, "z")
    assert table is not None
    got = c.services.data_tables.rows_page(ws, table.id, 10, None).rows
    assert [(r["x"], r["y"]) for r in got] == [(0.0, 0.0), (0.0, 1.0)]  # equal values
    kept = c.warehouse.backend == "postgresql"
    assert math.copysign(1, got[0]["x"]) == (-1 if kept else 1)
    assert math.copysign(1, got[0]["y"]) == (-1 if kept else 1)
