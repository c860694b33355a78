"""Typed answers of the native API (``/api/v1``). Each model mirrors one schema of the server's
OpenAPI document (``MODEL_SCHEMAS``); a test fails when their fields drift apart. Unknown fields
a newer server adds are kept (``extra="allow"``), so an older SDK keeps working."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")
TERMINAL = frozenset({"COMPLETED", "COMPLETED_NO_DATA", "FAILED", "CANCELLED"})


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class Page(Model, Generic[T]):
    """One page of a list: ``data`` and where it sits among ``total_size`` items."""

    data: list[T]
    page: int
    limit: int
    total_size: int
    total_pages: int


class Connection(Model):
    id: str
    name: str
    type: str
    settings: dict[str, Any]
    secret_names: list[str]
    created_at: datetime
    updated_at: datetime


class ConnectionTest(Model):
    ok: bool
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)


class Element(Model):
    """A browsable thing of a connection: FOLDER (schema, directory), FILE (table, file) or
    COLUMN, with its children."""

    id: str
    element_type: str
    name: str
    path: str
    kind: str | None = None
    type: str | None = None
    error: str | None = None
    children: list[Element] = Field(default_factory=list)


class TemplateField(Model):
    name: str
    type: str
    nullable: bool


class Template(Model):
    id: str
    name: str
    kind: str
    connection_id: str
    table: str | None
    schema_: str | None = Field(alias="schema")
    table_name: str | None
    query: str | None
    fields: list[TemplateField]
    primary_key: list[str]
    cursor_field: str | None
    date_field: str | None
    csv_null_values: list[str] | None = None  # a CSV template's own; None: its connection's


class Schedule(Model):
    id: str
    cron: str
    timezone: str
    enabled: bool
    date_window: str | None
    next_run_at: str | None
    next_run_at_local: str | None
    last_fired_at: datetime | None
    gaps: list[dict[str, str]] = Field(default_factory=list)


class FireTime(Model):
    """A schedule's coming fire time, in UTC and in its time zone."""

    at: str
    at_local: str


class Backfill(Model):
    from_: str = Field(alias="from")
    windows_total: int
    windows_done: int
    windows_failed: int


class Configuration(Model):
    id: str
    name: str
    template_id: str
    fields: list[str] | None
    format: str
    compression: str
    destination: dict[str, Any]
    file_name_pattern: str | None
    split_by: str | None
    filter: str | None
    extract_only_new: bool
    incremental_lag: float | None
    date_from: str | None
    date_to: str | None
    watermark: Any = None
    start_date: datetime | None
    end_date: datetime | None
    status: str
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    # Set by the seed-001 extracts face: the account read, whether loads add the system
    # columns, the structured filter as given and the client's free-form parameters.
    account: str | None = None
    system_columns: bool = False
    conditions: list[dict[str, Any]] | None = None
    additional_params: dict[str, Any] | None = None
    # Schedules, backfill and sync state (README "Schedules and backfill").
    schedules: list[Schedule] = Field(default_factory=list)
    schedules_limit: int | None = None
    sync_historical_data: str | None = None
    backfill_window: str = "month"
    backfill: Backfill | None = None
    paused: bool = False
    last_sync: datetime | None = None
    sync_status: str = "inactive"
    error_text: str | None = None


class Subject(Model):
    """Who did something: a user, an OAuth client, a token, or the system."""

    type: str
    id: str
    name: str


class File(Model):
    file_name: str
    name: str
    download_url: str
    size_bytes: int | None = None
    sha256: str | None = None
    signed_url: str | None = None  # the same download without a bearer header, until…
    signed_url_expires_at: datetime | None = None


class SubExtract(Model):
    id: str
    value: str | None
    status: str
    record_count: int | None
    file: File | None


class SubExtractStatus(SubExtract):
    execution_id: str
    run: int


class Progress(Model):
    processed: int
    estimated_total: int | None = None  # the source's estimate, when it has one


class Run(Model):
    run: int
    kind: str = "extract"  # extract | export: every kind of job shares the run queue
    status: str
    process_id: str | None
    queued_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    record_count: int | None
    error_message: str | None
    retryable: bool | None = None
    warnings: list[str] = Field(default_factory=list)
    attempt: int
    next_attempt_at: datetime | None = None
    hold_reason: str | None = None
    file: File | None
    sub_extracts: list[SubExtract]
    progress: Progress | None = None

    @property
    def split(self) -> bool:
        """Split by an attribute: ``file`` is a zip built on the fly (no sha256); the parts,
        each with its own, are the sub-extracts' files."""
        return self.file is not None and self.file.sha256 is None


class Execution(Model):
    """One trigger of a configuration with its runs. ``wait()`` needs the SDK client that
    returned it (an ``AsyncClient``'s: ``await client.executions.wait(execution)``)."""

    extract_configuration_name: str
    extract_configuration_id: str
    id: str
    latest_status: str
    latest_process_id: str | None
    latest_record_count: int | None
    created_at: datetime
    trigger: str
    triggered_by: Subject | None = None
    schedule_id: str | None = None  # a scheduled execution's schedule and slot
    due_at: datetime | None = None
    catch_up: bool | None = None
    options: dict[str, Any]
    window: dict[str, Any] | None
    progress: Progress | None
    sub_extracts: list[SubExtract]
    runs: list[Run]
    _waiter: Callable[..., Any] | None = PrivateAttr(default=None)

    @property
    def done(self) -> bool:
        return self.latest_status in TERMINAL

    @property
    def latest(self) -> Run:
        return self.runs[-1]

    def wait(
        self,
        timeout: float | None = None,
        on_progress: Callable[[Execution], None] | None = None,
    ) -> Execution:
        """Poll until the latest run finishes (see ``Executions.wait``)."""
        if self._waiter is None:
            raise TypeError("this execution is not bound to a Client: use client.executions.wait")
        result: Execution = self._waiter(self, timeout=timeout, on_progress=on_progress)
        return result


class ExecutionSummary(Model):
    id: str
    extract_configuration_id: str
    latest_status: str
    latest_started_at: datetime | None
    latest_completed_at: datetime | None
    latest_run_record_count: int | None
    total_runs: int


class DataTableSummary(Model):
    id: str
    name: str
    row_count: int
    updated_at: datetime


class DataTable(DataTableSummary):
    fields: list[TemplateField]
    mode: str
    primary_key: list[str]
    template_id: str | None
    created_at: datetime
    configurations: list[dict[str, str]]


class Rows(Model):
    data: list[dict[str, Any]]
    next_cursor: str | None


# Each model and the schema of the server's OpenAPI document it mirrors.
MODEL_SCHEMAS: dict[type[Model], str] = {
    Connection: "ConnectionOut",
    ConnectionTest: "ConnectionTestOut",
    TemplateField: "FieldOut",
    Template: "TemplateOut",
    Configuration: "ConfigurationOut",
    Schedule: "ScheduleOut",
    FireTime: "FireTimeOut",
    File: "FileOut",
    SubExtract: "SubExtractOut",
    SubExtractStatus: "SubExtractStatusOut",
    Progress: "ProgressOut",
    Run: "RunOut",
    Execution: "ExecutionOut",
    ExecutionSummary: "ExecutionSummaryOut",
    DataTableSummary: "DataTableSummaryOut",
    DataTable: "DataTableOut",
    Rows: "RowsOut",
}
