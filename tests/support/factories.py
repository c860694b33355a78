"""Building configurations in tests: one place for the defaults every test would repeat."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from egress.container import Container
from egress.db.executions import RunRecord
from egress.domain.paging import PageRequest
from egress.domain.spec import ExecutionSpec
from tests.conftest import make_settings
from tests.support.migrated import migrate


@contextmanager
def sqlite_container(tmp_path: Path, **extra: Any) -> Iterator[Container]:
    """A container on a migrated SQLite metadata database in ``tmp_path`` (its own data dir),
    with ``extra`` settings."""
    settings = make_settings(tmp_path, **extra)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings)
    try:
        yield container
    finally:
        container.engine.dispose()


@contextmanager
def warehouse_container(warehouse: str, tmp_path: Path, pg_factory: Any) -> Iterator[Container]:
    """A container with batches of 10 rows loading data tables into the default SQLite
    warehouse (``warehouse`` "sqlite") or a new PostgreSQL database ("pg")."""
    extra: dict[str, Any] = {"batch_rows": 10}
    db = pg_factory("egress_wh") if warehouse == "pg" else None
    if db is not None:
        extra["warehouse_url"] = db.sqlalchemy_url
    with sqlite_container(tmp_path, **extra) as container:
        try:
            yield container
        finally:
            container.warehouse.engine.dispose()
            if db is not None:
                db.end_connections()


# A frozen spec for queue tests whose runs are never carried out: table main.t, one int column.
BARE_SPEC = ExecutionSpec.from_json(
    {
        "template": {
            "sourceSchema": "main",
            "sourceName": "t",
            "fields": [{"name": "id", "type": "int64"}],
        }
    }
)


def source_connection(
    c: Container,
    workspace_id: str,
    name: str,
    kind: str,
    settings: dict[str, Any],
    secrets: dict[str, str] | None = None,
) -> str:
    """A connection with ``secrets`` sealed as the service stores them; its id."""
    sealed = c.secret_box.seal(secrets) if secrets else None
    return c.connections.create(workspace_id, name, kind, settings, sealed).id


def configuration_values(template_id: str, name: str, **overrides: Any) -> dict[str, Any]:
    """A complete set of configuration values (CSV to storage), with ``overrides`` applied."""
    values: dict[str, Any] = {
        "name": name,
        "template_id": template_id,
        "fields": None,
        "format": "csv",
        "compression": "none",
        "destination": {"type": "storage", "path": "out"},
        "file_name_pattern": None,
        "start_date": None,
        "end_date": None,
    }
    values.update(overrides)
    return values


def submitted_configuration(
    c: Container, workspace_id: str, template_id: str, name: str, **overrides: Any
) -> str:
    """Create a configuration through the service (validated) and submit it; its id."""
    record = c.services.configurations.create(
        workspace_id, configuration_values(template_id, name, **overrides)
    )
    c.configurations.update(workspace_id, record.id, {"status": "SUBMITTED"})
    return record.id


def extract_once(
    c: Container,
    kind: str,
    settings: dict[str, Any],
    table: str,
    fmt: str,
    compression: str = "none",
    **overrides: Any,
) -> tuple[RunRecord, bytes]:
    """Register a connection, configure ``table`` (a template named ``table`` or ``*.table``)
    in ``fmt`` (and ``overrides``), run it once on this thread; the run and its first file's
    bytes."""
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, f"{kind}_{fmt}_{compression}_{table}", kind, settings, None)
    c.services.catalog.discover(ws, conn.id)
    tpl = next(
        t
        for t in c.templates.list_page(ws, conn.id, PageRequest(0, 100)).items
        if t.name == table or t.name.endswith(f".{table}")
    )
    cfg_id = submitted_configuration(
        c,
        ws,
        tpl.id,
        f"x_{fmt}_{compression}_{tpl.id[:8]}",
        format=fmt,
        compression=compression,
        **overrides,
    )
    ex, _ = c.services.executions.trigger(ws, cfg_id, {})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg_id, ex.id).latest
    data = b"".join(c.storage.stream(run.files[0].storage_key)) if run.files else b""
    return run, data
