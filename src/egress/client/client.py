"""``Client`` and ``AsyncClient``: the API's resources as namespaces over httpx."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import httpx

from egress.client.aio import (
    AsyncConfigurations,
    AsyncConnections,
    AsyncDataTables,
    AsyncExecutions,
    AsyncExports,
    AsyncSchedules,
    AsyncTemplates,
)
from egress.client.download import ByteProgress
from egress.client.errors import EgressError
from egress.client.exports import ExportCallback, ExportIndex
from egress.client.flows import request
from egress.client.models import Execution
from egress.client.resources import (
    Configurations,
    Connections,
    DataTables,
    Executions,
    Exports,
    Runner,
    Schedules,
    Templates,
)
from egress.client.transport import AsyncDriver, SyncDriver

DEFAULT_TIMEOUT = 30.0


def _settings(base_url: str | None, token: str | None) -> tuple[str, dict[str, str]]:
    """Arguments first, then ``EGRESS_URL`` / ``EGRESS_TOKEN``."""
    url = base_url or os.environ.get("EGRESS_URL")
    if not url:
        raise EgressError("no Egress URL: pass base_url or set EGRESS_URL")
    token = token or os.environ.get("EGRESS_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return url.rstrip("/"), headers


class _Areas:
    """The namespaces, over one runner (sync results, or awaitables of them)."""

    def __init__(self, runner: Runner) -> None:
        self.executions = Executions(runner)
        bound = self.executions._run  # executions returned anywhere can wait() themselves
        self.connections = Connections(bound)
        self.templates = Templates(bound)
        self.configurations = Configurations(bound)
        self.schedules = Schedules(bound)
        self.data_tables = DataTables(bound)
        self.exports = Exports(bound)


class Client:
    """The Egress API, synchronously::

    with Client("http://127.0.0.1:8000", token) as client:
        execution = client.configurations.trigger(config_id).wait()
        [path] = client.download(execution, to="out/")
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url, headers = _settings(base_url, token)
        self.base_url = url
        self._http = httpx.Client(
            base_url=url, headers=headers, timeout=timeout, transport=transport
        )
        self._bucket = httpx.Client(timeout=timeout)  # presigned URLs: no token
        self._driver = SyncDriver(self._http, self._bucket)
        areas = _Areas(self._driver.run)
        self.executions = areas.executions
        self.connections = areas.connections
        self.templates = areas.templates
        self.configurations = areas.configurations
        self.schedules = areas.schedules
        self.data_tables = areas.data_tables
        self.exports = areas.exports

    def close(self) -> None:
        self._http.close()
        self._bucket.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Any API call (``params``, ``json``, ``headers``); error answers raise typed errors."""
        return self._driver.run(request(method, path, **kwargs))

    def download(
        self,
        execution: Execution,
        run: int | None = None,
        sub_extract: str | None = None,
        to: str | Path | None = None,
        on_progress: ByteProgress | None = None,
    ) -> list[Path]:
        """See ``Executions.download``."""
        return self.executions.download(
            execution, run=run, sub_extract=sub_extract, to=to, on_progress=on_progress
        )

    def export_all(
        self,
        object: str,
        to: str | Path,
        *,
        format: str = "jsonl",
        fields: list[str] | None = None,
        firm: str | None = None,
        on_progress: ExportCallback | None = None,
        jobs: int | None = None,
        csv_dialect: str | None = None,
    ) -> ExportIndex:
        """See ``Exports.export_all``."""
        return self.exports.export_all(
            object,
            to,
            format=format,
            fields=fields,
            firm=firm,
            on_progress=on_progress,
            jobs=jobs,
            csv_dialect=csv_dialect,
        )


class AsyncClient:
    """The same namespaces and methods as ``Client``, each returning an awaitable::

    async with AsyncClient() as client:
        execution = await client.configurations.trigger(config_id)
        execution = await client.executions.wait(execution)
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        url, headers = _settings(base_url, token)
        self.base_url = url
        self._http = httpx.AsyncClient(
            base_url=url, headers=headers, timeout=timeout, transport=transport
        )
        self._bucket = httpx.AsyncClient(timeout=timeout)
        self._driver = AsyncDriver(self._http, self._bucket)
        # The sync namespaces, each call returning an awaitable here: typed as such (``aio``).
        areas = _Areas(cast(Runner, self._driver.run))
        self.executions = cast(AsyncExecutions, areas.executions)
        self.connections = cast(AsyncConnections, areas.connections)
        self.templates = cast(AsyncTemplates, areas.templates)
        self.configurations = cast(AsyncConfigurations, areas.configurations)
        self.schedules = cast(AsyncSchedules, areas.schedules)
        self.data_tables = cast(AsyncDataTables, areas.data_tables)
        self.exports = cast(AsyncExports, areas.exports)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._bucket.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self._driver.run(request(method, path, **kwargs))

    async def download(
        self,
        execution: Execution,
        run: int | None = None,
        sub_extract: str | None = None,
        to: str | Path | None = None,
        on_progress: ByteProgress | None = None,
    ) -> list[Path]:
        return await self.executions.download(
            execution, run=run, sub_extract=sub_extract, to=to, on_progress=on_progress
        )

    async def export_all(
        self,
        object: str,
        to: str | Path,
        *,
        format: str = "jsonl",
        fields: list[str] | None = None,
        firm: str | None = None,
        on_progress: ExportCallback | None = None,
        jobs: int | None = None,
        csv_dialect: str | None = None,
    ) -> ExportIndex:
        return await self.exports.export_all(
            object,
            to,
            format=format,
            fields=fields,
            firm=firm,
            on_progress=on_progress,
            jobs=jobs,
            csv_dialect=csv_dialect,
        )
