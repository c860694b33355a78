"""Request and response bodies. Field names are camelCase on the wire, as in seed 000."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    dataclasses,
)

from egress.api.native.wire import NAME_RULES, NotNull, Request, Wire
from egress.api.native.wire import ListEnvelope as ListEnvelope
from egress.api.native.wire import Name as Name
from egress.domain.catalog import MAX_CSV_NULL_VALUE_CHARS, MAX_CSV_NULL_VALUES
from egress.domain.configuration import Configuration
from egress.domain.options import checked_utc, day_end, day_start

# ----------------------------------------------------------------- connections
ConnectionType = Literal["postgresql", "mysql", "sqlite", "files"]
# Settings and secrets are hosts, paths, URLs, keys and passwords: 64 KiB is far beyond any of
# them, and bounds what one connection stores, seals and hands to a driver.
MAX_SETTING_BYTES = 64 << 10


def _capped(value: Any) -> Any:
    if isinstance(value, str) and len(value.encode()) > MAX_SETTING_BYTES:
        raise ValueError(f"is longer than {MAX_SETTING_BYTES} bytes")
    return value


SettingValue = Annotated[Any, AfterValidator(_capped)]
SecretValue = Annotated[str, AfterValidator(_capped)]


class ConnectionCreate(Request):
    name: str = Name
    type: ConnectionType
    settings: dict[str, SettingValue]
    secrets: dict[str, SecretValue] = Field(default_factory=dict)


class ConnectionPatch(Request):
    name: str | None = NotNull(**NAME_RULES)
    settings: dict[str, SettingValue] | None = NotNull()
    secrets: dict[str, SecretValue] | None = None


class ConnectionOut(Wire):
    id: str
    name: str
    type: str
    settings: dict[str, Any]
    secret_names: list[str]
    created_at: datetime
    updated_at: datetime


class ConnectionTestOut(Wire):
    ok: bool
    error: str | None = None
    # Advice about the connection's user (a superuser, or one that can write).
    warnings: list[str] = Field(default_factory=list)


# ------------------------------------------------------------------- templates
class FieldOut(Wire):
    name: str
    type: str
    nullable: bool


class TemplateCreate(Request):
    connection_id: str
    name: str = Field(min_length=1, max_length=400)
    table: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description='a table as listed (public.orders, "x.y".z) or a file path; with schema:'
        " the bare table name",
    )
    schema_: str | None = Field(
        default=None,
        alias="schema",
        min_length=1,
        max_length=400,
        description="the table's schema, given apart from table (no quoting needed)",
    )
    query: str | None = Field(
        default=None,
        description="instead of table: one SELECT (admins only); its columns are the fields",
    )
    fields: list[str] | None = Field(default=None, min_length=1)
    primary_key: list[str] | None = None
    cursor_field: str | None = None
    date_field: str | None = None
    column_types: dict[str, str] | None = Field(
        default=None,
        description='CSV files: a type per field instead of the inferred one ({"zip": "string"})',
    )
    csv_null_values: list[Annotated[str, Field(max_length=MAX_CSV_NULL_VALUE_CHARS)]] | None = (
        Field(
            default=None,
            max_length=MAX_CSV_NULL_VALUES,
            description='CSV files: the fields that mean NULL besides an empty one (["NA"]), '
            "instead of the connection's csvNullValues",
        )
    )


class TemplateOut(Wire):
    id: str
    name: str
    kind: str
    connection_id: str
    table: str | None  # the shown name (public.orders, "x.y".z); null for a SQL template
    # The table's parts: its schema (null for files and SQL templates) and its own name.
    schema_: str | None = Field(alias="schema")
    table_name: str | None
    query: str | None  # a SQL template's SELECT; null for a table's template
    fields: list[FieldOut]
    primary_key: list[str]
    cursor_field: str | None
    date_field: str | None
    csv_null_values: list[str] | None  # a CSV template's own; null: its connection's


# -------------------------------------------------------------- configurations
Format = Literal["csv", "jsonl", "parquet"]
Compression = Literal["none", "gzip"]
CsvDialect = Literal["egress", "postgres"]


class StorageDestination(Request):
    type: Literal["storage"]
    path: str = Field(default="", max_length=1000)


class DataTableDestination(Request):
    type: Literal["dataTable"]
    data_table: str = Field(
        pattern=r"^[a-z_][a-z0-9_]{0,39}$", description="lower-case letters, digits, underscore"
    )
    mode: Literal["append", "upsert"] = "append"


Destination = Annotated[StorageDestination | DataTableDestination, Field(discriminator="type")]


def _as_utc_start(value: Any) -> Any:
    """A plain date as a start: its first instant; date-times must carry a time zone."""
    if isinstance(value, str) and len(value) == 10:
        return day_start(date.fromisoformat(value))
    return value


def _as_utc_end(value: Any) -> Any:
    """A plain date as an end takes the whole day, as a run's ``dateTo`` does: it ends at the
    next midnight UTC (exclusive)."""
    if isinstance(value, str) and len(value) == 10:
        return day_end(date.fromisoformat(value))
    return value


# An effective date: a zoned timestamp that exists in UTC, or a date (startDate: its midnight
# UTC; endDate: the whole day, up to the next midnight).
StartDate = Annotated[AwareDatetime, BeforeValidator(_as_utc_start), AfterValidator(checked_utc)]
EndDate = Annotated[AwareDatetime, BeforeValidator(_as_utc_end), AfterValidator(checked_utc)]


DateWindow = Literal["previousHour", "previousDay", "previousWeek", "previousMonth"]
BackfillWindow = Literal["day", "week", "month"]
# At most this many schedules in one body, whatever a configuration's schedulesLimit.
MAX_SCHEDULES = 100


class ScheduleCreate(Request):
    """A new schedule (``POST …/schedules``): the service gives it its id."""

    cron: str = Field(min_length=1, max_length=200, description='"0 2 * * *" or @daily')
    timezone: str = Field(default="UTC", min_length=1, max_length=64, description="IANA name")
    enabled: bool = True
    date_window: DateWindow | None = None


class ScheduleIn(ScheduleCreate):
    """An item of a configuration's ``schedules`` list: one with an id keeps its slot."""

    id: str | None = Field(default=None, max_length=36, description="keep it to keep the slot")


class SchedulePatch(Request):
    cron: str | None = NotNull(min_length=1, max_length=200)
    timezone: str | None = NotNull(min_length=1, max_length=64)
    enabled: bool | None = NotNull()
    date_window: DateWindow | None = None


class ScheduleOut(Wire):
    id: str
    cron: str
    timezone: str
    enabled: bool
    date_window: str | None
    next_run_at: str | None = Field(description="ISO 8601 in UTC")
    next_run_at_local: str | None = Field(description="ISO 8601 with the zone's offset")
    last_fired_at: datetime | None
    gaps: list[dict[str, str]] = Field(
        description="windows a catch-up could not cover (EGRESS_SCHEDULE_MAX_LATENESS_S)"
    )


class FireTimeOut(Wire):
    at: str
    at_local: str


class PreviewOut(Wire):
    data: list[FireTimeOut]


class BackfillOut(Wire):
    from_: str = Field(alias="from")
    windows_total: int
    windows_done: int
    windows_failed: int


class ConfigurationOptions(Request):
    """What a configuration may leave out: the same in a whole body (POST, PUT) and a PATCH."""

    fields: list[str] | None = Field(default=None, min_length=1)
    file_name_pattern: str | None = Field(default=None, min_length=1, max_length=400)
    split_by: str | None = Field(
        default=None, min_length=1, max_length=200, description="write one file per value"
    )
    filter: str | None = Field(default=None, max_length=100_000, description="default whereClause")
    extract_only_new: bool | None = None
    incremental_lag: float | str | None = Field(
        default=None,
        description="incremental: how long a cursor value must have been seen before a run"
        ' takes it, in seconds or as "30s", "5m", "1h" (sources without snapshots)',
    )
    date_from: str | None = Field(default=None, max_length=40)
    date_to: str | None = Field(default=None, max_length=40)
    start_date: StartDate | None = None
    end_date: EndDate | None = None
    schedules: list[ScheduleIn] = Field(default_factory=list, max_length=MAX_SCHEDULES)
    schedules_limit: int | None = Field(default=None, ge=0, le=MAX_SCHEDULES)
    sync_historical_data: str | None = Field(
        default=None, max_length=10, description="ISO date: backfill [that day, today)"
    )
    backfill_window: BackfillWindow = "month"
    parallelism: int = Field(
        default=1,
        ge=1,
        description="sessions reading key ranges of one snapshot (at most EGRESS_MAX_PARALLELISM)",
    )
    csv_dialect: CsvDialect | None = Field(
        default=None,
        description='CSV rendering: "egress" (the default, the same for every source) or'
        ' "postgres" (PostgreSQL\'s own text rendering through plain COPY: fastest)',
    )


class ConfigurationFields(ConfigurationOptions):
    format: Format | None = Field(
        default=None, description="required for a storage destination; a data table has no file"
    )
    compression: Compression = "none"
    destination: Destination


class ConfigurationCreate(ConfigurationFields):
    name: str = Name
    template_id: str


class ConfigurationPatch(ConfigurationOptions):
    """Only what is given changes; what a configuration cannot be without may not be null."""

    name: str | None = NotNull(**NAME_RULES)
    template_id: str | None = NotNull()
    format: Format | None = NotNull()
    compression: Compression | None = NotNull()
    destination: Destination | None = NotNull()
    extract_only_new: bool | None = NotNull()


@dataclasses.dataclass(frozen=True, kw_only=True, config=Wire.model_config)
class ConfigurationOut(Configuration):
    """A configuration as shown: its fields are the domain's ``Configuration``'s (listed there
    once), camelCase on the wire, with ``active`` added and the workspace left out."""

    workspace_id: str = Field(default="", exclude=True)  # the caller's own: not shown
    incremental_lag: float | None = Field(description="seconds; null: the source's default")
    active: bool  # submitted and within its effective dates, now
    schedules: list[ScheduleOut]  # with their next slots
    schedules_limit: int | None = Field(description="null: the default, EGRESS_SCHEDULES_LIMIT")
    backfill: BackfillOut | None
    last_sync: datetime | None
    sync_status: str = Field(description="inactive | paused | syncing | error | active")
    error_text: str | None


# ------------------------------------------------------------------ executions
class TriggerRequest(Request):
    """Run options (seeds 001/002); each overrides the configuration's default."""

    date_from: str | None = Field(
        default=None, max_length=40, description="inclusive date or ISO timestamp"
    )
    date_to: str | None = Field(
        default=None, max_length=40, description="inclusive date or ISO timestamp"
    )
    date_to_exclusive: bool | None = Field(
        default=None, description="true: records before dateTo (half-open [dateFrom, dateTo))"
    )
    extract_only_new: bool | None = Field(
        default=None, description="incremental: only records past the watermark"
    )
    incremental_lag: float | str | None = Field(
        default=None,
        description="incremental: how long a cursor value must have been seen before a run"
        ' takes it, in seconds or as "30s", "5m", "1h" (sources without snapshots)',
    )
    where_clause: str | None = Field(
        default=None, max_length=100_000, description="SQL condition over the template's fields"
    )
    rows: list[dict[str, Any]] | None = Field(
        default=None, description="selected rows, by primary key"
    )
    select_all: bool | None = Field(
        default=None, description="true: all matching records (rows absent or empty)"
    )


class FileOut(Wire):
    file_name: str  # the file's path under its destination, as seed 000 shows it
    name: str  # the bare file name (the download's Content-Disposition)
    download_url: str
    size_bytes: int | None = None  # None for a zip of a split run's parts, built on the fly
    sha256: str | None = None
    # The same download without a bearer header (for browsers), until signedUrlExpiresAt.
    signed_url: str | None = None
    signed_url_expires_at: datetime | None = None


class SubExtractOut(Wire):
    id: str
    value: str | None
    status: str
    record_count: int | None
    file: FileOut | None


class SubExtractStatusOut(SubExtractOut):
    execution_id: str
    run: int


class ProgressOut(Wire):
    processed: int
    estimated_total: int | None = Field(
        default=None,
        description="the source's estimate of the records this run reads (EXPLAIN on "
        "PostgreSQL, MySQL); null when not known",
    )


class RunOut(Wire):
    run: int
    # What the run does: "extract" (an extraction configuration's run); every kind of job
    # shares the run queue, so one execution's runs are all of one kind.
    kind: str
    status: str
    process_id: str | None
    queued_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    record_count: int | None
    error_message: str | None
    # Whether the failure in errorMessage was transient (another attempt or a re-run may
    # succeed) or terminal (fix the cause first); null without a failure.
    retryable: bool | None = None
    warnings: list[str] = Field(default_factory=list)
    attempt: int
    next_attempt_at: datetime | None = None  # a PENDING run waiting out its retry backoff
    hold_reason: str | None = None  # why an ON_HOLD run waits
    file: FileOut | None
    sub_extracts: list[SubExtractOut]
    progress: ProgressOut | None = None


class SubjectOut(Wire):
    type: str  # user | client | token | system
    id: str
    name: str


class AuditObjectOut(Wire):
    type: str
    id: str


class AuditEventOut(Wire):
    id: int
    at: datetime
    actor: SubjectOut
    action: str
    object: AuditObjectOut | None
    outcome: str  # success | failure
    source_address: str | None
    detail: dict[str, Any]


class ExecutionOut(Wire):
    extract_configuration_name: str
    extract_configuration_id: str
    id: str
    latest_status: str
    latest_process_id: str | None
    latest_record_count: int | None
    created_at: datetime
    trigger: str
    triggered_by: SubjectOut
    schedule_id: str | None = None
    due_at: datetime | None = None
    catch_up: bool | None = None
    options: dict[str, Any]
    window: dict[str, Any] | None
    progress: ProgressOut | None
    sub_extracts: list[SubExtractOut]
    runs: list[RunOut]


class ExecutionSummaryOut(Wire):
    id: str
    extract_configuration_id: str
    latest_status: str
    latest_started_at: datetime | None
    latest_completed_at: datetime | None
    latest_run_record_count: int | None
    total_runs: int


# ----------------------------------------------------------------- data tables
class DataTableSummaryOut(Wire):
    id: str
    name: str
    row_count: int
    updated_at: datetime


class DataTableOut(DataTableSummaryOut):
    fields: list[FieldOut]
    mode: str  # how it is loaded, for good: "upsert" by primaryKey, or "append"
    primary_key: list[str]
    template_id: str | None  # the template it is loaded from (null: not recorded yet)
    created_at: datetime
    configurations: list[dict[str, str]]


class RowsOut(Wire):
    data: list[dict[str, Any]]
    next_cursor: str | None
