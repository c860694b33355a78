# ruff: noqa: E501  (signatures are pinned verbatim, one per line)
"""The SDK's public surface is pinned, as httpx pins its own: a change to ``__all__`` or to a
public signature must be made here too, on purpose (and in the README's SDK section)."""

from __future__ import annotations

import inspect

import pytest

import egress.client
from egress.client import AsyncClient, Client, EgressError, Execution, aio
from egress.client.resources import (
    Configurations,
    Connections,
    DataTables,
    Executions,
    Exports,
    Schedules,
    Templates,
)

ALL = [
    "ApiError",
    "AsyncClient",
    "BadRequest",
    "ChecksumMismatch",
    "Client",
    "Configuration",
    "Conflict",
    "Connection",
    "ConnectionTest",
    "DataTable",
    "DataTableSummary",
    "EgressError",
    "Element",
    "Execution",
    "ExecutionSummary",
    "ExportFailed",
    "ExportIndex",
    "ExportJob",
    "ExportObject",
    "ExportProgress",
    "File",
    "FireTime",
    "Forbidden",
    "Invalid",
    "NoFile",
    "NotFound",
    "Page",
    "PayloadTooLarge",
    "Progress",
    "RangeNotSatisfiable",
    "RateLimited",
    "Rows",
    "Run",
    "RunFailed",
    "Schedule",
    "ServerError",
    "SubExtract",
    "SubExtractStatus",
    "Template",
    "TemplateField",
    "Unauthorized",
    "WaitTimeout",
]
SIGNATURES = {
    "Client.__init__": "(self, base_url: 'str | None' = None, token: 'str | None' = None, *, timeout: 'float' = 30.0, transport: 'httpx.BaseTransport | None' = None) -> 'None'",
    "Client.close": "(self) -> 'None'",
    "Client.download": "(self, execution: 'Execution', run: 'int | None' = None, sub_extract: 'str | None' = None, to: 'str | Path | None' = None, on_progress: 'ByteProgress | None' = None) -> 'list[Path]'",
    "Client.request": "(self, method: 'str', path: 'str', **kwargs: 'Any') -> 'httpx.Response'",
    "AsyncClient.__init__": "(self, base_url: 'str | None' = None, token: 'str | None' = None, *, timeout: 'float' = 30.0, transport: 'httpx.AsyncBaseTransport | None' = None) -> 'None'",
    "AsyncClient.aclose": "(self) -> 'None'",
    "AsyncClient.download": "(self, execution: 'Execution', run: 'int | None' = None, sub_extract: 'str | None' = None, to: 'str | Path | None' = None, on_progress: 'ByteProgress | None' = None) -> 'list[Path]'",
    "AsyncClient.request": "(self, method: 'str', path: 'str', **kwargs: 'Any') -> 'httpx.Response'",
    "Connections.create": "(self, name: 'str', type: 'str', settings: 'Mapping[str, Any]', secrets: 'Mapping[str, str] | None' = None) -> 'Connection'",
    "Connections.delete": "(self, connection: 'Connection | str') -> 'None'",
    "Connections.elements": "(self, connection: 'Connection | str') -> 'Elements'",
    "Connections.get": "(self, connection: 'Connection | str') -> 'Connection'",
    "Connections.list": "(self, *, page: 'int' = 0, limit: 'int' = 50) -> 'Page[Connection]'",
    "Connections.test": "(self, connection: 'Connection | str') -> 'ConnectionTest'",
    "Connections.update": "(self, connection: 'Connection | str', *, name: 'str | None' = None, settings: 'Mapping[str, Any] | None' = None, secrets: 'Mapping[str, str] | None' = None) -> 'Connection'",
    "Templates.create": "(self, body: 'Mapping[str, Any] | None' = None, /, **fields: 'Any') -> 'Template'",
    "Templates.get": "(self, template: 'Template | str') -> 'Template'",
    "Templates.list": "(self, connection: 'Connection | str | None' = None, *, page: 'int' = 0, limit: 'int' = 50) -> 'Page[Template]'",
    "Configurations.create": "(self, body: 'Mapping[str, Any] | None' = None, /, **fields: 'Any') -> 'Configuration'",
    "Configurations.delete": "(self, configuration: 'Configuration | str') -> 'None'",
    "Configurations.get": "(self, configuration: 'Configuration | str') -> 'Configuration'",
    "Configurations.list": "(self, *, status: 'str | None' = None, page: 'int' = 0, limit: 'int' = 50) -> 'Page[Configuration]'",
    "Configurations.submit": "(self, configuration: 'Configuration | str') -> 'Configuration'",
    "Configurations.trigger": "(self, configuration: 'Configuration | str', *, date_from: 'str | None' = None, date_to: 'str | None' = None, where: 'str | None' = None, only_new: 'bool | None' = None, rows: 'SelectedRows | None' = None, select_all: 'bool | None' = None, incremental_lag: 'float | str | None' = None, idempotency_key: 'str | None' = None) -> 'Execution'",
    "Configurations.update": "(self, configuration: 'Configuration | str', /, **changes: 'Any') -> 'Configuration'",
    "Executions.cancel": "(self, execution: 'Execution | str', configuration: 'Configuration | str | None' = None) -> 'Execution'",
    "Executions.download": "(self, execution: 'Execution | str', configuration: 'Configuration | str | None' = None, *, run: 'int | None' = None, sub_extract: 'str | None' = None, to: 'str | Path | None' = None, on_progress: 'dl.ByteProgress | None' = None) -> 'Paths'",
    "Executions.find": "(self, execution_id: 'str') -> 'Execution'",
    "Executions.get": "(self, execution: 'Execution | str', configuration: 'Configuration | str | None' = None) -> 'Execution'",
    "Executions.list": "(self, configuration: 'Configuration | str', *, page: 'int' = 0, limit: 'int' = 50) -> 'Page[ExecutionSummary]'",
    "Executions.rerun": "(self, execution: 'Execution | str', configuration: 'Configuration | str | None' = None, *, idempotency_key: 'str | None' = None) -> 'Execution'",
    "Executions.sub_extract": "(self, execution: 'Execution', sub_extract_id: 'str', *, run: 'int | None' = None) -> 'SubExtractStatus'",
    "Executions.wait": "(self, execution: 'Execution | str', configuration: 'Configuration | str | None' = None, *, timeout: 'float | None' = None, on_progress: 'ProgressCallback | None' = None) -> 'Execution'",
    "DataTables.get": "(self, data_table: 'DataTableSummary | str') -> 'DataTable'",
    "DataTables.list": "(self, *, page: 'int' = 0, limit: 'int' = 50) -> 'Page[DataTableSummary]'",
    "DataTables.rows": "(self, data_table: 'DataTableSummary | str', *, limit: 'int' = 100, cursor: 'str | None' = None) -> 'Rows'",
    "Client.export_all": "(self, object: 'str', to: 'str | Path', *, format: 'str' = 'jsonl', fields: 'list[str] | None' = None, firm: 'str | None' = None, on_progress: 'ExportCallback | None' = None, jobs: 'int | None' = None, csv_dialect: 'str | None' = None) -> 'ExportIndex'",
    "AsyncClient.export_all": "(self, object: 'str', to: 'str | Path', *, format: 'str' = 'jsonl', fields: 'list[str] | None' = None, firm: 'str | None' = None, on_progress: 'ExportCallback | None' = None, jobs: 'int | None' = None, csv_dialect: 'str | None' = None) -> 'ExportIndex'",
    "Exports.objects": "(self, *, firm: 'str | None' = None) -> 'list[ex.ExportObject]'",
    "Exports.export_all": "(self, object: 'str', to: 'str | Path', *, format: 'str' = 'jsonl', fields: 'list[str] | None' = None, firm: 'str | None' = None, on_progress: 'ex.ExportCallback | None' = None, jobs: 'int | None' = None, csv_dialect: 'str | None' = None) -> 'ex.ExportIndex'",
    "Configurations.pause": "(self, configuration: 'Configuration | str', *, cancel_queued: 'bool' = False) -> 'Configuration'",
    "Configurations.resume": "(self, configuration: 'Configuration | str') -> 'Configuration'",
    "Schedules.list": "(self, configuration: 'Configuration | str') -> 'list[Schedule]'",
    "Schedules.get": "(self, configuration: 'Configuration | str', schedule: 'Schedule | str') -> 'Schedule'",
    "Schedules.add": "(self, configuration: 'Configuration | str', cron: 'str', *, timezone: 'str' = 'UTC', enabled: 'bool' = True, date_window: 'str | None' = None) -> 'Schedule'",
    "Schedules.remove": "(self, configuration: 'Configuration | str', schedule: 'Schedule | str') -> 'None'",
    "Schedules.preview": "(self, configuration: 'Configuration | str', schedule: 'Schedule | str', *, count: 'int' = 5) -> 'FireTimes'",
    "Execution.wait": "(self, timeout: 'float | None' = None, on_progress: 'Callable[[Execution], None] | None' = None) -> 'Execution'",
}
CLASSES = (
    Client,
    AsyncClient,
    Connections,
    Templates,
    Configurations,
    Executions,
    DataTables,
    Exports,
    Schedules,
    Execution,
)
NAMESPACES = {
    "connections",
    "templates",
    "configurations",
    "executions",
    "data_tables",
    "exports",
    "schedules",
}


def _public(cls: type) -> dict[str, str]:
    out = {}
    for name, member in vars(cls).items():
        init = name == "__init__" and cls in (Client, AsyncClient)
        public = not name.startswith(("_", "model_"))  # model_*: pydantic's own
        if (init or public) and inspect.isfunction(member):
            out[f"{cls.__name__}.{name}"] = str(inspect.signature(member))
    return out


def test_all_is_pinned() -> None:
    assert egress.client.__all__ == ALL
    assert all(hasattr(egress.client, name) for name in ALL)


def test_signatures_are_pinned() -> None:
    actual = {k: v for cls in CLASSES for k, v in _public(cls).items()}
    assert actual == SIGNATURES


def test_both_clients_have_the_same_namespaces() -> None:
    sync = Client("http://127.0.0.1:9", "t")
    aio = AsyncClient("http://127.0.0.1:9", "t")
    for name in NAMESPACES:
        assert type(getattr(sync, name)) is type(getattr(aio, name))
    sync.close()


def test_async_namespaces_are_typed_as_awaitables() -> None:
    """What a type checker sees of ``AsyncClient``'s namespaces (``aio``): each method of the
    sync namespace, with its very signature, as a coroutine."""
    for cls in CLASSES[2:-1]:
        twin = getattr(aio, f"Async{cls.__name__}")
        sync = {k.split(".")[1]: v for k, v in _public(cls).items()}
        typed = {k.split(".")[1]: v for k, v in _public(twin).items()}
        assert typed == sync, cls.__name__
        assert all(inspect.iscoroutinefunction(getattr(twin, name)) for name in typed)
    aio_client = AsyncClient("http://127.0.0.1:9", "t")
    assert aio_client.connections.list.__qualname__ == "Connections.list"  # the same code


def test_url_and_token_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EGRESS_URL", "http://egress.example:8000/")
    monkeypatch.setenv("EGRESS_TOKEN", "tok")
    with Client() as client:
        assert client.base_url == "http://egress.example:8000"
        assert client._http.headers["authorization"] == "Bearer tok"
    with Client("http://other:1", "mine") as client:  # arguments win
        assert client._http.headers["authorization"] == "Bearer mine"
    monkeypatch.delenv("EGRESS_URL")
    with pytest.raises(EgressError, match="EGRESS_URL"):
        Client()
