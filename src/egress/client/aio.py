"""How an ``AsyncClient``'s namespaces look to a type checker: the same classes as a
``Client``'s (``resources``) run every flow through the async driver, so each method returns an
awaitable of what the sync one returns. These protocols say so; a test keeps each signature
identical to its sync twin's."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from egress.client import download as dl
from egress.client import exports as ex
from egress.client.models import (
    Configuration,
    Connection,
    ConnectionTest,
    DataTable,
    DataTableSummary,
    Execution,
    ExecutionSummary,
    Page,
    Rows,
    Schedule,
    SubExtractStatus,
    Template,
)
from egress.client.resources import (
    Elements,
    FireTimes,
    Paths,
    ProgressCallback,
    SelectedRows,
)


class AsyncConnections(Protocol):
    """``Connections`` of an ``AsyncClient``: each method awaitable."""

    async def list(self, *, page: int = 0, limit: int = 50) -> Page[Connection]: ...

    async def get(self, connection: Connection | str) -> Connection: ...

    async def create(
        self,
        name: str,
        type: str,
        settings: Mapping[str, Any],
        secrets: Mapping[str, str] | None = None,
    ) -> Connection: ...

    async def update(
        self,
        connection: Connection | str,
        *,
        name: str | None = None,
        settings: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> Connection: ...

    async def delete(self, connection: Connection | str) -> None: ...

    async def test(self, connection: Connection | str) -> ConnectionTest: ...

    async def elements(self, connection: Connection | str) -> Elements: ...


class AsyncTemplates(Protocol):
    """``Templates`` of an ``AsyncClient``: each method awaitable."""

    async def list(
        self, connection: Connection | str | None = None, *, page: int = 0, limit: int = 50
    ) -> Page[Template]: ...

    async def get(self, template: Template | str) -> Template: ...

    async def create(self, body: Mapping[str, Any] | None = None, /, **fields: Any) -> Template: ...


class AsyncConfigurations(Protocol):
    """``Configurations`` of an ``AsyncClient``: each method awaitable."""

    async def list(
        self, *, status: str | None = None, page: int = 0, limit: int = 50
    ) -> Page[Configuration]: ...

    async def get(self, configuration: Configuration | str) -> Configuration: ...

    async def create(
        self, body: Mapping[str, Any] | None = None, /, **fields: Any
    ) -> Configuration: ...

    async def update(
        self, configuration: Configuration | str, /, **changes: Any
    ) -> Configuration: ...

    async def delete(self, configuration: Configuration | str) -> None: ...

    async def submit(self, configuration: Configuration | str) -> Configuration: ...

    async def pause(
        self, configuration: Configuration | str, *, cancel_queued: bool = False
    ) -> Configuration: ...

    async def resume(self, configuration: Configuration | str) -> Configuration: ...

    async def trigger(
        self,
        configuration: Configuration | str,
        *,
        date_from: str | None = None,
        date_to: str | None = None,
        where: str | None = None,
        only_new: bool | None = None,
        rows: SelectedRows | None = None,
        select_all: bool | None = None,
        incremental_lag: float | str | None = None,
        idempotency_key: str | None = None,
    ) -> Execution: ...


class AsyncSchedules(Protocol):
    """``Schedules`` of an ``AsyncClient``: each method awaitable."""

    async def list(self, configuration: Configuration | str) -> list[Schedule]: ...

    async def get(
        self, configuration: Configuration | str, schedule: Schedule | str
    ) -> Schedule: ...

    async def add(
        self,
        configuration: Configuration | str,
        cron: str,
        *,
        timezone: str = "UTC",
        enabled: bool = True,
        date_window: str | None = None,
    ) -> Schedule: ...

    async def remove(
        self, configuration: Configuration | str, schedule: Schedule | str
    ) -> None: ...

    async def preview(
        self, configuration: Configuration | str, schedule: Schedule | str, *, count: int = 5
    ) -> FireTimes: ...


class AsyncExecutions(Protocol):
    """``Executions`` of an ``AsyncClient``: each method awaitable."""

    async def list(
        self, configuration: Configuration | str, *, page: int = 0, limit: int = 50
    ) -> Page[ExecutionSummary]: ...

    async def get(
        self, execution: Execution | str, configuration: Configuration | str | None = None
    ) -> Execution: ...

    async def find(self, execution_id: str) -> Execution: ...

    async def rerun(
        self,
        execution: Execution | str,
        configuration: Configuration | str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Execution: ...

    async def cancel(
        self, execution: Execution | str, configuration: Configuration | str | None = None
    ) -> Execution: ...

    async def sub_extract(
        self, execution: Execution, sub_extract_id: str, *, run: int | None = None
    ) -> SubExtractStatus: ...

    async def wait(
        self,
        execution: Execution | str,
        configuration: Configuration | str | None = None,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Execution: ...

    async def download(
        self,
        execution: Execution | str,
        configuration: Configuration | str | None = None,
        *,
        run: int | None = None,
        sub_extract: str | None = None,
        to: str | Path | None = None,
        on_progress: dl.ByteProgress | None = None,
    ) -> Paths: ...


class AsyncDataTables(Protocol):
    """``DataTables`` of an ``AsyncClient``: each method awaitable."""

    async def list(self, *, page: int = 0, limit: int = 50) -> Page[DataTableSummary]: ...

    async def get(self, data_table: DataTableSummary | str) -> DataTable: ...

    async def rows(
        self, data_table: DataTableSummary | str, *, limit: int = 100, cursor: str | None = None
    ) -> Rows: ...


class AsyncExports(Protocol):
    """``Exports`` of an ``AsyncClient``: each method awaitable."""

    async def objects(self, *, firm: str | None = None) -> list[ex.ExportObject]: ...

    async def export_all(
        self,
        object: str,
        to: str | Path,
        *,
        format: str = "jsonl",
        fields: list[str] | None = None,
        firm: str | None = None,
        on_progress: ex.ExportCallback | None = None,
        jobs: int | None = None,
        csv_dialect: str | None = None,
    ) -> ex.ExportIndex: ...
