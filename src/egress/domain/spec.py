"""What an execution freezes when it is triggered, so every run and re-run reads the same thing.

One typed value (``ExecutionSpec``) with a versioned JSON form. ``from_json`` reads every shape
stored so far: version 1 carries ``"version": 1``; the unversioned shapes before it lack keys
that were added over time (options, ``splitBy``, the template's parts…), read as their
defaults, so executions already in a database keep running and re-running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.plan import KeySelection

SPEC_VERSION = 1
# A configuration's csvDialect that writes PostgreSQL's own text rendering (plain COPY);
# "egress" (or none) is Egress's documented rendering, the same for every source.
POSTGRES_DIALECT = "postgres"


@dataclass(frozen=True)
class ConfigurationSnapshot:
    id: str
    name: str
    version: int
    fields: list[str] | None  # None: every template field
    format: str
    compression: str
    destination: dict[str, Any]  # {"type": "storage", "path"} or {"type": "dataTable", …}
    file_name_pattern: str | None
    split_by: str | None
    account: str | None = None  # the account it reads (schema, MySQL database, folder)
    system_columns: bool = False  # loads add account_id, account_name, __insert_date
    parallelism: int = 1  # sessions reading key ranges of one snapshot (README "Parallel reads")
    csv_dialect: str | None = None  # None: Egress's CSV rendering; "postgres": PostgreSQL's

    @property
    def to_storage(self) -> bool:
        return self.destination.get("type") == "storage"

    @property
    def folder(self) -> str:
        """The destination path of a storage delivery ('' for the root)."""
        return str(self.destination.get("path") or "")

    @property
    def data_table(self) -> dict[str, Any] | None:
        return self.destination if self.destination.get("type") == "dataTable" else None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "fields": self.fields,
            "format": self.format,
            "compression": self.compression,
            "destination": self.destination,
            "fileNamePattern": self.file_name_pattern,
            "splitBy": self.split_by,
        }
        if self.system_columns:  # only then: snapshots without them stay as they were
            data |= {"account": self.account, "systemColumns": True}
        if self.parallelism != 1:
            data["parallelism"] = self.parallelism
        if self.csv_dialect is not None:  # likewise
            data["csvDialect"] = self.csv_dialect
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConfigurationSnapshot:
        return cls(
            id=data.get("id", ""),
            name=data.get("name", ""),
            version=int(data.get("version", 1)),
            fields=None if data.get("fields") is None else list(data["fields"]),
            format=data.get("format", "csv"),
            compression=data.get("compression", "none"),
            destination=dict(data.get("destination") or {"type": "storage", "path": ""}),
            file_name_pattern=data.get("fileNamePattern"),
            split_by=data.get("splitBy"),
            account=data.get("account"),
            system_columns=bool(data.get("systemColumns", False)),
            parallelism=int(data.get("parallelism", 1)),
            csv_dialect=data.get("csvDialect"),
        )


@dataclass(frozen=True)
class TemplateSnapshot:
    id: str
    name: str
    source_table: str  # the display name it had (a SQL template's is "")
    source: TableRef | None  # the parts it reads; None for a SQL template
    fields: list[ColumnInfo]
    primary_key: list[str]
    cursor_field: str | None
    date_field: str | None
    query: str | None
    csv_null_values: list[str] | None = None  # a CSV template's own NULL spellings

    def to_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        if self.csv_null_values is not None:  # absent otherwise: older specs keep their shape
            shown["csvNullValues"] = self.csv_null_values
        return {
            "id": self.id,
            "name": self.name,
            "sourceTable": self.source_table,
            "sourceSchema": self.source.schema if self.source else None,
            "sourceName": self.source.name if self.source else None,
            "fields": [f.as_dict() for f in self.fields],
            "primaryKey": self.primary_key,
            "cursorField": self.cursor_field,
            "dateField": self.date_field,
            "query": self.query,
            **shown,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TemplateSnapshot:
        query = data.get("query")
        source = None
        if query is None:
            # Migration 0011 gave every stored snapshot its parts.
            source = TableRef(data.get("sourceSchema"), data["sourceName"])
        return cls(
            id=data.get("id", ""),
            name=data.get("name", ""),
            source_table=data.get("sourceTable", ""),
            source=source,
            fields=[ColumnInfo(**f) for f in data["fields"]],
            primary_key=list(data.get("primaryKey") or []),
            cursor_field=data.get("cursorField"),
            date_field=data.get("dateField"),
            query=query,
            csv_null_values=data.get("csvNullValues"),
        )


@dataclass(frozen=True)
class ConnectionRef:
    id: str
    type: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConnectionRef:
        return cls(id=data.get("id", ""), type=data.get("type", ""))


@dataclass(frozen=True)
class RunOptions:
    """The trigger's options over the configuration's defaults, as checked when triggered."""

    date_from: str | None = None
    date_to: str | None = None
    where_clause: str | None = None
    rows: KeySelection | None = None
    select_all: bool = True
    extract_only_new: bool = False
    incremental_lag: float | None = None  # seconds; None: the source's default
    date_to_exclusive: bool = False  # half-open [dateFrom, dateTo) (schedules, backfill)
    # An incremental run narrowed by the trigger itself (its own dateFrom/dateTo, whereClause
    # or rows, other than the configuration's): those options, by their wire names. It reads
    # only some of its window's records, so it never moves the watermark.
    narrowed_by: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dateFrom": self.date_from,
            "dateTo": self.date_to,
            "whereClause": self.where_clause,
            "rows": {"fields": self.rows.fields, "values": self.rows.values} if self.rows else None,
            "selectAll": self.select_all,
            "extractOnlyNew": self.extract_only_new,
            "incrementalLag": self.incremental_lag,
        }
        if self.date_to_exclusive:  # written only when set: older specs read back unchanged
            out["dateToExclusive"] = True
        if self.narrowed_by:  # likewise
            out["narrowedBy"] = list(self.narrowed_by)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunOptions:
        rows = data.get("rows")
        return cls(
            date_from=data.get("dateFrom"),
            date_to=data.get("dateTo"),
            where_clause=data.get("whereClause"),
            rows=KeySelection(list(rows["fields"]), list(rows["values"])) if rows else None,
            select_all=bool(data.get("selectAll", rows is None)),
            extract_only_new=bool(data.get("extractOnlyNew")),
            incremental_lag=data.get("incrementalLag"),
            date_to_exclusive=bool(data.get("dateToExclusive")),
            narrowed_by=tuple(data.get("narrowedBy") or ()),
        )


@dataclass(frozen=True)
class SnapshotMark:
    """A PostgreSQL window's snapshot part: the run's own snapshot and the state it built on."""

    snapshot: str
    quiet: bool  # nothing was in progress in ``snapshot``
    previous_snapshot: str | None
    after: str | None  # the previous snapshot, when its late commits must be looked for


@dataclass(frozen=True)
class FrozenWindow:
    """An incremental run's window on ``field``: (low, high], frozen on the execution the first
    time so every attempt and re-run reads the same records. Exactly one of ``snapshot`` (a
    PostgreSQL table) and ``lag`` (every other source: seconds waited out) is set."""

    field: str
    low: Any
    high: Any
    snapshot: SnapshotMark | None = None
    lag: float | None = None
    numeric: bool = False  # a number cursor: its marks compare by value (incremental.later)
    # The run reads only part of its window (RunOptions.narrowed_by): the watermark stays.
    keeps_watermark: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "low": self.low, "high": self.high}
        if self.numeric:
            out["numeric"] = True
        if self.keeps_watermark:
            out["keepsWatermark"] = True
        if self.snapshot is not None:
            out |= {
                "snapshot": self.snapshot.snapshot,
                "quiet": self.snapshot.quiet,
                "previousSnapshot": self.snapshot.previous_snapshot,
                "after": self.snapshot.after,
            }
        if self.lag is not None:
            out["lag"] = self.lag
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FrozenWindow:
        mark = None
        if "snapshot" in data:
            mark = SnapshotMark(
                snapshot=data["snapshot"],
                quiet=bool(data.get("quiet")),
                previous_snapshot=data.get("previousSnapshot"),
                after=data.get("after"),
            )
        return cls(
            data["field"],
            data.get("low"),
            data.get("high"),
            mark,
            data.get("lag"),
            bool(data.get("numeric")),
            bool(data.get("keepsWatermark")),
        )


@dataclass(frozen=True)
class ExecutionSpec:
    """What one execution of kind ``extract`` freezes: re-runs read exactly this."""

    configuration: ConfigurationSnapshot
    template: TemplateSnapshot
    connection: ConnectionRef
    options: RunOptions = field(default_factory=RunOptions)
    window: FrozenWindow | None = None  # set by the first run of an incremental execution

    @property
    def incremental(self) -> bool:
        return self.options.extract_only_new

    @property
    def split(self) -> bool:
        return bool(self.configuration.split_by)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": SPEC_VERSION,
            "configuration": self.configuration.to_json(),
            "template": self.template.to_json(),
            "connection": self.connection.to_json(),
            "options": self.options.to_json(),
        }
        if self.window is not None:
            out["window"] = self.window.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExecutionSpec:
        version = data.get("version", 0)
        if version > SPEC_VERSION:
            raise ValueError(
                f"execution spec version {version} is newer than this build reads ({SPEC_VERSION})"
            )
        window = data.get("window")
        return cls(
            configuration=ConfigurationSnapshot.from_json(data.get("configuration") or {}),
            template=TemplateSnapshot.from_json(data["template"]),
            connection=ConnectionRef.from_json(data.get("connection") or {}),
            options=RunOptions.from_json(data.get("options") or {}),
            window=FrozenWindow.from_json(window) if window is not None else None,
        )


def postgres_dialect_problem(
    source_type: str, values: dict[str, Any], what: str = "template"
) -> str | None:
    """Why a configuration's ``values`` cannot take csvDialect "postgres", or None: PostgreSQL's
    own rendering is one plain ``COPY`` (one per session of a parallel read) into one CSV file in
    storage. ``what`` names the thing read (a template, or an export's data table)."""
    if source_type != "postgresql":
        return f"'postgres' is PostgreSQL's own rendering; this {what} reads a {source_type} source"
    if values["format"] != "csv":
        return f"'postgres' renders CSV; the format is {values['format']}"
    if values["destination"]["type"] != "storage" or values.get("split_by") is not None:
        return "'postgres' writes one CSV file: no splitBy, no data table"
    return None
