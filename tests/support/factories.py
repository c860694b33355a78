"""Building configurations in tests: one place for the defaults every test would repeat."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from egress.api.app import create_app
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


def assert_faces_refuse_loading(tmp_path: Path, csv_path: str, header: str, message: str) -> None:
    """A CSV file of ``header`` (at ``csv_path`` under a files connection) loaded into a data
    table is refused by seed 001's extract (400, its dialect for invalid input) and by the
    native API (422), both naming the field with ``message``; nothing is saved."""
    with sqlite_container(tmp_path / "c") as c:
        identity = c.services.identity
        workspace = identity.create_workspace("w")
        admin = identity.create_token(workspace, "admin", "setup").token
        folder = tmp_path / "files"  # inside the files root of the container's settings
        (folder / csv_path).parent.mkdir(parents=True)
        (folder / csv_path).write_text(f"{header}\n1,10\n")
        with TestClient(
            create_app(c, with_worker=False), headers={"Authorization": f"Bearer {admin}"}
        ) as http:
            made = http.post(
                "/api/v1/connections",
                json={"name": "files", "type": "files", "settings": {"url": folder.as_uri()}},
            )
            assert made.status_code == 201, made.text
            templates = http.get("/api/v1/templates", params={"connectionId": made.json()["id"]})
            tpl = next(t["id"] for t in templates.json()["data"] if t["name"] == csv_path)
            account = csv_path.split("/")[0]
            body = {"data_table_title": "refused", "template_id": tpl, "accounts": [account]}
            answer = http.post("/api/v3.1/extracts/", json=body)
            assert answer.status_code == 400, answer.text
            assert answer.json()["errors"] == [
                {"field": "template_settings.fields", "location": "body", "message": message}
            ]
            destination = {"type": "dataTable", "dataTable": "refused", "mode": "append"}
            native = http.post(
                "/api/v1/extraction-configurations",
                json={"name": "refused", "templateId": tpl, "destination": destination},
            )
            assert native.status_code == 422, native.text
            assert native.json()["errors"] == [
                {"field": "fields", "location": "body", "message": message}
            ]
        assert c.configurations.list_page(workspace, None, PageRequest(0, 10)).items == []
