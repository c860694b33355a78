"""A configuration's lifecycle on the engine: deleting it removes every file it published,
manifests included."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from egress.container import Container
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from tests.conftest import make_settings
from tests.support.factories import submitted_configuration
from tests.support.migrated import migrate


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings)
    yield container
    container.engine.dispose()
    container.warehouse.engine.dispose()


@pytest.fixture
def template_id(c: Container, tmp_path: Path) -> str:
    path = tmp_path / "src.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE sales (id INTEGER PRIMARY KEY, region TEXT)")
        db.executemany(
            "INSERT INTO sales VALUES (?, ?)", [(i, ["EU", "NA", "APAC"][i % 3]) for i in range(30)]
        )
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, "src", "sqlite", {"path": str(path)}, None)
    c.services.catalog.discover(ws, conn.id)
    return next(
        t.id
        for t in c.templates.list_page(ws, conn.id, PageRequest(0, 10)).items
        if t.name == "main.sales"
    )


def _run(c: Container, ws: str, cfg: str) -> None:
    execution, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, execution.id).latest
    assert run.status is RunStatus.COMPLETED, run.error_message


@pytest.mark.parametrize("split_by", [None, "region"])
def test_deleting_a_configuration_deletes_its_files_and_manifests(
    c: Container, template_id: str, split_by: str | None
) -> None:
    ws = c.workspaces.ensure_workspace("t")
    cfg = submitted_configuration(c, ws, template_id, "sales_out", split_by=split_by)
    _run(c, ws, cfg)
    _run(c, ws, cfg)
    published = [o.key for o in c.storage.list(ws)]
    manifests = [k for k in published if k.endswith(".manifest.json")]
    assert len(manifests) == 2 and len(published) == 2 * (4 if split_by else 2)

    c.services.configurations.delete(ws, cfg)
    assert [o.key for o in c.storage.list(ws)] == []
