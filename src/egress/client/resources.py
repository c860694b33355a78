"""The API's resources as namespaces of a client (``client.connections``, …). Each method builds
a flow (``flows``) and hands it to the client's driver: on a ``Client`` it returns the result, on
an ``AsyncClient`` an awaitable of it — one definition for both."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from egress.client import download as dl
from egress.client import exports as ex
from egress.client.errors import NotFound
from egress.client.flows import Flow, camel, empty, parsed, wait
from egress.client.models import (
    Configuration,
    Connection,
    ConnectionTest,
    DataTable,
    DataTableSummary,
    Element,
    Execution,
    ExecutionSummary,
    FireTime,
    Page,
    Rows,
    Schedule,
    SubExtractStatus,
    Template,
)

T = TypeVar("T")
API = "/api/v1"
CONNECTIONS = f"{API}/connections"
TEMPLATES = f"{API}/templates"
CONFIGURATIONS = f"{API}/extraction-configurations"
DATA_TABLES = f"{API}/data-tables"
Paths = list[Path]
SelectedRows = list[dict[str, Any]]  # selected rows, by primary key
Elements = list[Element]
FireTimes = list[FireTime]


class Runner(Protocol):
    """Carries a flow out: its result (``Client``), or an awaitable of it (``AsyncClient``)."""

    def __call__(self, flow: Flow[T], /) -> T: ...


ProgressCallback = Callable[[Execution], None]


def _id(obj: Any) -> str:
    """An object's id, or the id itself."""
    return str(getattr(obj, "id", obj))


class _Bound:
    """A runner whose executions can ``wait()`` themselves."""

    def __init__(self, runner: Runner, waiter: Callable[..., Any]) -> None:
        self._runner, self._waiter = runner, waiter

    def __call__(self, flow: Flow[T], /) -> T:
        return self._runner(_bound(flow, self._waiter))


def _bound(flow: Flow[T], waiter: Callable[..., Any]) -> Flow[T]:
    result = yield from flow
    if isinstance(result, Execution):
        result._waiter = waiter
    return result


class _Area:
    def __init__(self, runner: Runner) -> None:
        self._run = runner


def _paging(page: int, limit: int, **more: Any) -> dict[str, Any]:
    return {"page": page, "limit": limit, **more}


class Connections(_Area):
    def list(self, *, page: int = 0, limit: int = 50) -> Page[Connection]:
        return self._run(parsed(Page[Connection], "GET", CONNECTIONS, params=_paging(page, limit)))

    def get(self, connection: Connection | str) -> Connection:
        return self._run(parsed(Connection, "GET", f"{CONNECTIONS}/{_id(connection)}"))

    def create(
        self,
        name: str,
        type: str,
        settings: Mapping[str, Any],
        secrets: Mapping[str, str] | None = None,
    ) -> Connection:
        body = {"name": name, "type": type, "settings": dict(settings)}
        if secrets:
            body["secrets"] = dict(secrets)
        return self._run(parsed(Connection, "POST", CONNECTIONS, json=body))

    def update(
        self,
        connection: Connection | str,
        *,
        name: str | None = None,
        settings: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> Connection:
        body = {"name": name, "settings": settings, "secrets": secrets}
        changes = {k: v for k, v in body.items() if v is not None}
        path = f"{CONNECTIONS}/{_id(connection)}"
        return self._run(parsed(Connection, "PATCH", path, json=changes))

    def delete(self, connection: Connection | str) -> None:
        return self._run(empty("DELETE", f"{CONNECTIONS}/{_id(connection)}"))

    def test(self, connection: Connection | str) -> ConnectionTest:
        path = f"{CONNECTIONS}/{_id(connection)}/test"
        return self._run(parsed(ConnectionTest, "POST", path))

    def elements(self, connection: Connection | str) -> Elements:
        """The connection's catalog: folders (schemas, directories), files (tables) and
        columns."""
        return self._run(_elements(f"{CONNECTIONS}/{_id(connection)}/elements"))


def _elements(path: str) -> Flow[list[Element]]:
    page: dict[str, list[Element]] = yield from parsed(dict[str, list[Element]], "GET", path)
    return page["data"]


class Templates(_Area):
    def list(
        self, connection: Connection | str | None = None, *, page: int = 0, limit: int = 50
    ) -> Page[Template]:
        """Templates; with ``connection``, its tables are discovered first."""
        params = _paging(page, limit, connectionId=_id(connection) if connection else None)
        return self._run(parsed(Page[Template], "GET", TEMPLATES, params=params))

    def get(self, template: Template | str) -> Template:
        return self._run(parsed(Template, "GET", f"{TEMPLATES}/{_id(template)}"))

    def create(self, body: Mapping[str, Any] | None = None, /, **fields: Any) -> Template:
        """A custom template: ``connection_id``, ``name`` and a ``table`` or (admins) a
        ``query``, optionally ``fields``, ``primary_key``, ``cursor_field``, ``date_field``."""
        payload = camel({**(body or {}), **fields})
        return self._run(parsed(Template, "POST", TEMPLATES, json=payload))


class Configurations(_Area):
    def list(
        self, *, status: str | None = None, page: int = 0, limit: int = 50
    ) -> Page[Configuration]:
        params = _paging(page, limit, status=status)
        return self._run(parsed(Page[Configuration], "GET", CONFIGURATIONS, params=params))

    def get(self, configuration: Configuration | str) -> Configuration:
        return self._run(parsed(Configuration, "GET", f"{CONFIGURATIONS}/{_id(configuration)}"))

    def create(self, body: Mapping[str, Any] | None = None, /, **fields: Any) -> Configuration:
        """A DRAFT configuration from ``body`` (as the API spells it) and/or keyword fields
        (``template_id=…, format="csv", destination={"type": "storage", "path": "out"}``)."""
        payload = camel({**(body or {}), **fields})
        return self._run(parsed(Configuration, "POST", CONFIGURATIONS, json=payload))

    def update(self, configuration: Configuration | str, /, **changes: Any) -> Configuration:
        path = f"{CONFIGURATIONS}/{_id(configuration)}"
        return self._run(parsed(Configuration, "PATCH", path, json=camel(changes)))

    def delete(self, configuration: Configuration | str) -> None:
        return self._run(empty("DELETE", f"{CONFIGURATIONS}/{_id(configuration)}"))

    def submit(self, configuration: Configuration | str) -> Configuration:
        path = f"{CONFIGURATIONS}/{_id(configuration)}/submit"
        return self._run(parsed(Configuration, "POST", path))

    def pause(
        self, configuration: Configuration | str, *, cancel_queued: bool = False
    ) -> Configuration:
        """Stop schedule and backfill firing (manual triggers still run); ``cancel_queued``
        also cancels the queued runs of scheduled and backfill executions."""
        path = f"{CONFIGURATIONS}/{_id(configuration)}/pause"
        params = {"cancelQueued": "true"} if cancel_queued else None
        return self._run(parsed(Configuration, "POST", path, params=params))

    def resume(self, configuration: Configuration | str) -> Configuration:
        """Fire again from the next slot on (paused slots are not replayed)."""
        path = f"{CONFIGURATIONS}/{_id(configuration)}/resume"
        return self._run(parsed(Configuration, "POST", path))

    def trigger(
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
    ) -> Execution:
        """A new execution (202); options left out take the configuration's defaults. The same
        ``idempotency_key`` with the same options returns the same execution."""
        options = {
            "dateFrom": date_from,
            "dateTo": date_to,
            "whereClause": where,
            "extractOnlyNew": only_new,
            "rows": rows,
            "selectAll": select_all,
            "incrementalLag": incremental_lag,
        }
        body = {k: v for k, v in options.items() if v is not None} or None
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        path = f"{CONFIGURATIONS}/{_id(configuration)}/executions"
        return self._run(parsed(Execution, "POST", path, json=body, headers=headers))


def _schedules(configuration: Configuration | str) -> str:
    return f"{CONFIGURATIONS}/{_id(configuration)}/schedules"


class Schedules(_Area):
    """A configuration's schedules, one at a time (cron in a time zone)."""

    def list(self, configuration: Configuration | str) -> list[Schedule]:
        return self._run(parsed(list[Schedule], "GET", _schedules(configuration)))

    def get(self, configuration: Configuration | str, schedule: Schedule | str) -> Schedule:
        path = f"{_schedules(configuration)}/{_id(schedule)}"
        return self._run(parsed(Schedule, "GET", path))

    def add(
        self,
        configuration: Configuration | str,
        cron: str,
        *,
        timezone: str = "UTC",
        enabled: bool = True,
        date_window: str | None = None,
    ) -> Schedule:
        """``cron``: five fields or a macro (``@daily``); ``date_window``: ``previousHour``,
        ``previousDay``, ``previousWeek`` or ``previousMonth``."""
        body = {"cron": cron, "timezone": timezone, "enabled": enabled, "dateWindow": date_window}
        return self._run(parsed(Schedule, "POST", _schedules(configuration), json=body))

    def remove(self, configuration: Configuration | str, schedule: Schedule | str) -> None:
        return self._run(empty("DELETE", f"{_schedules(configuration)}/{_id(schedule)}"))

    def preview(
        self, configuration: Configuration | str, schedule: Schedule | str, *, count: int = 5
    ) -> FireTimes:
        """The next ``count`` fire times from now."""
        return self._run(_preview(f"{_schedules(configuration)}/{_id(schedule)}/preview", count))


def _preview(path: str, count: int) -> Flow[list[FireTime]]:
    page: dict[str, list[FireTime]] = yield from parsed(
        dict[str, list[FireTime]], "GET", path, params={"count": count}
    )
    return page["data"]


def execution_path(execution: Execution | str, configuration: Configuration | str | None) -> str:
    if isinstance(execution, Execution):
        configuration = execution.extract_configuration_id
    if configuration is None:
        raise TypeError("an execution id needs its configuration (configuration=...)")
    return f"{CONFIGURATIONS}/{_id(configuration)}/executions/{_id(execution)}"


class Executions(_Area):
    """An execution is given as the ``Execution`` object, or as its id with its
    ``configuration``."""

    def __init__(self, runner: Runner, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(_Bound(runner, self.wait))
        self._clock = clock

    def list(
        self, configuration: Configuration | str, *, page: int = 0, limit: int = 50
    ) -> Page[ExecutionSummary]:
        path = f"{CONFIGURATIONS}/{_id(configuration)}/executions"
        return self._run(parsed(Page[ExecutionSummary], "GET", path, params=_paging(page, limit)))

    def get(
        self, execution: Execution | str, configuration: Configuration | str | None = None
    ) -> Execution:
        return self._run(parsed(Execution, "GET", execution_path(execution, configuration)))

    def find(self, execution_id: str) -> Execution:
        """An execution by its id alone (the configuration unknown): looked for in every
        configuration of the workspace."""
        return self._run(_find(execution_id))

    def rerun(
        self,
        execution: Execution | str,
        configuration: Configuration | str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Execution:
        """Run N+1 with the same frozen parameters (only after COMPLETED or FAILED)."""
        path = f"{execution_path(execution, configuration)}/rerun"
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._run(parsed(Execution, "POST", path, headers=headers))

    def cancel(
        self, execution: Execution | str, configuration: Configuration | str | None = None
    ) -> Execution:
        path = f"{execution_path(execution, configuration)}/cancel"
        return self._run(parsed(Execution, "POST", path))

    def sub_extract(
        self, execution: Execution, sub_extract_id: str, *, run: int | None = None
    ) -> SubExtractStatus:
        path = f"{execution_path(execution, None)}/sub-extracts/{sub_extract_id}"
        params = {"run": run}
        return self._run(parsed(SubExtractStatus, "GET", path, params=params))

    def wait(
        self,
        execution: Execution | str,
        configuration: Configuration | str | None = None,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Execution:
        """Poll (backing off from 0.2 s to 5 s, waiting out ``429``/``503`` per
        ``Retry-After``) until the latest run finishes; returns the finished execution. Raises
        ``RunFailed`` on FAILED, ``WaitTimeout`` after ``timeout`` seconds."""
        path = execution_path(execution, configuration)
        return self._run(wait(path, timeout, on_progress, self._clock))

    def download(
        self,
        execution: Execution | str,
        configuration: Configuration | str | None = None,
        *,
        run: int | None = None,
        sub_extract: str | None = None,
        to: str | Path | None = None,
        on_progress: dl.ByteProgress | None = None,
    ) -> Paths:
        """The run's file (a split run: each part) streamed to disk, resumed after a broken
        transfer, verified against its sha256 and only then renamed into place; returns the
        paths. ``to``: a file name, or a directory (an existing one, or a name ending in
        ``/``; default: the current one)."""
        if isinstance(to, str) and to.endswith(("/", os.sep)):
            Path(to).mkdir(parents=True, exist_ok=True)
        path = execution_path(execution, configuration)
        target = Path(to) if to is not None else None
        return self._run(_download(path, run, sub_extract, target, on_progress))


def _find(execution_id: str) -> Flow[Execution]:
    for configuration in (yield from _all_configurations()):
        try:
            return (
                yield from parsed(Execution, "GET", execution_path(execution_id, configuration))
            )
        except NotFound:
            continue
    raise NotFound(404, {"status": 404, "detail": f"execution {execution_id} not found"})


def _all_configurations() -> Flow[list[Configuration]]:
    """Every configuration, page after page."""
    items: list[Configuration] = []
    page = 0
    while True:
        params = _paging(page, 200)
        result = yield from parsed(Page[Configuration], "GET", CONFIGURATIONS, params=params)
        items.extend(result.data)
        page += 1
        if page >= result.total_pages:
            return items


def _download(
    path: str,
    run: int | None,
    sub_extract: str | None,
    to: Path | None,
    on_progress: dl.ByteProgress | None,
) -> Flow[list[Path]]:
    # Fresh details: the file list and hashes of the run asked for, and current URLs.
    execution = yield from parsed(Execution, "GET", path)
    return (yield from dl.download(dl.targets(execution, run, sub_extract, to), on_progress))


class DataTables(_Area):
    def list(self, *, page: int = 0, limit: int = 50) -> Page[DataTableSummary]:
        params = _paging(page, limit)
        return self._run(parsed(Page[DataTableSummary], "GET", DATA_TABLES, params=params))

    def get(self, data_table: DataTableSummary | str) -> DataTable:
        return self._run(parsed(DataTable, "GET", f"{DATA_TABLES}/{_id(data_table)}"))

    def rows(
        self, data_table: DataTableSummary | str, *, limit: int = 100, cursor: str | None = None
    ) -> Rows:
        """One page of rows; pass ``next_cursor`` back for the next one."""
        path = f"{DATA_TABLES}/{_id(data_table)}/rows"
        return self._run(parsed(Rows, "GET", path, params={"limit": limit, "cursor": cursor}))


class Exports(_Area):
    """The bulk-export API (seed 003). ``firm``: the workspace id of its paths (default: the
    token's workspace)."""

    def objects(self, *, firm: str | None = None) -> list[ex.ExportObject]:
        """What can be exported: data tables by name, templates as ``t-<id>``."""
        return self._run(ex.objects(firm))

    def export_all(
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
    ) -> ex.ExportIndex:
        """Every object, job after job following ``nextCursor``: one file per job in ``to``
        plus ``index.json``; run again after an interruption, it resumes where it stopped.
        ``jobs``: stop after that many more jobs (the index says whether it is complete);
        ``csv_dialect="postgres"``: PostgreSQL's own CSV rendering (see the README)."""
        flow = ex.export_all(object, Path(to), format, fields, firm, on_progress, jobs, csv_dialect)
        return self._run(flow)
