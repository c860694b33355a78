"""One bulk-export job (a run of kind ``export``, seed 003): the object's rows in key order
after the request's cursor, at most ``limit`` of them, into one file published under the
commit protocol; the outcome carries the count and where the next job starts.

It reads ``limit + 1`` rows: the extra one only says that more remain (and is not written),
so the last job of a chain ends with no next cursor rather than with an empty job after it.
The key columns are read even when the request's ``fields`` leave them out: the next cursor
is the last written row's key. CSV from a ``KeysetSource`` (PostgreSQL) goes through its COPY
path instead, which tells the last key and whether more follow from the same snapshot
(``sources/postgresql/keyset.py``); with csvDialect "postgres" (admitted only there) that COPY
writes PostgreSQL's own rendering.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, time
from typing import Any

import pyarrow as pa

from egress.db.executions import FileRecord
from egress.db.run_queue import ClaimedRun, Outcome, RunQueue
from egress.domain.catalog import ColumnInfo, TableInfo
from egress.domain.export import DATA_TABLE, EXPORT_FOLDER, ExportSpec
from egress.domain.naming import file_extension, storage_key
from egress.domain.paging import key_json, key_types, key_values
from egress.domain.plan import ReadPlan, plan_from_snapshot, select_fields
from egress.domain.spec import POSTGRES_DIALECT
from egress.domain.split import ALL
from egress.domain.status import RunStatus
from egress.domain.types import parse_list
from egress.engine.control import LeaseLost, RunControl
from egress.engine.faults import TransientFailure
from egress.engine.job import RunFailure, copy_rendering
from egress.sinks.data_table import Warehouse
from egress.sinks.file import FileSink, WrittenFile
from egress.sinks.writers import content_type
from egress.sources import Source, open_source
from egress.sources.arrow_types import arrow_schema
from egress.sources.base import KeysetSource
from egress.sources.policy import SourcePolicy
from egress.storage import DestinationExists, Storage, tmp_key

Batches = Callable[[ReadPlan, Source, RunControl], Iterator[pa.RecordBatch]]


@dataclass(frozen=True)
class ExportParts:
    """What the runner lends an export job."""

    storage: Storage
    queue: RunQueue
    clean: Callable[[], None]  # the attempt's temporary files deleted (or left to the reaper)
    batches: Batches  # the runner's bounded, stall-watched batches of a plan
    buffer_bytes: int


class WarehouseTable:
    """A data table read like a source (``Warehouse.read``): only what an export uses."""

    def __init__(self, warehouse: Warehouse, physical_name: str) -> None:
        self._warehouse = warehouse
        self._name = physical_name

    def read(
        self, plan: ReadPlan, batch_rows: int, batch_bytes: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        return self._warehouse.read(self._name, plan, batch_rows, batch_bytes)

    def check(self) -> None:
        return None

    def catalog(self) -> list[TableInfo]:
        return []

    def max_value(self, plan: ReadPlan, field: str) -> Any:
        raise NotImplementedError("data tables are not read incrementally")

    def close(self) -> None:
        return None

    def interrupt(self) -> None:
        # A stop takes effect between batches (RunControl checks before each one).
        return None


def warehouse_source(
    warehouse: Warehouse, policy: SourcePolicy, physical_name: str, fields: list[ColumnInfo]
) -> Source:
    """What a data table's export reads: on a PostgreSQL warehouse the PostgreSQL connector
    (ADBC, Arrow all the way; read-only sessions), under a policy that lets Egress reach its
    own warehouse, which tenant connections may not; elsewhere (SQLite) ``Warehouse.read``.
    ``Warehouse.read`` also reads a table whose first load never committed (it does not exist
    yet: empty, where the connector would fail on the missing relation) and one with lists or
    durations (stored as JSON text and ``interval``, which the connector does not read as
    the fields' types)."""
    url = warehouse.engine.url
    if (
        url.get_backend_name() != "postgresql"
        or any(f.type == "duration" or parse_list(f.type) for f in fields)
        or not warehouse.has_table(physical_name)
    ):
        return WarehouseTable(warehouse, physical_name)
    settings = {
        "host": url.host or "localhost",
        "port": url.port or 5432,
        "database": url.database or "",
        "user": url.username or "",
    }
    if "sslmode" in url.query:
        settings["sslmode"] = str(url.query["sslmode"])
    secrets = {"password": url.password} if url.password else {}
    own = replace(policy, own_databases=(), deny_hosts=(), allow_hosts=None)
    return open_source("postgresql", settings, secrets, own)


def export_plan(export: ExportSpec) -> ReadPlan:
    """The job's read: the written fields plus any key field they leave out, after the
    cursor, in key order, one row more than the job may write."""
    plan = plan_from_snapshot(export.execution)
    have = {f.name for f in plan.fields}
    extra = [c for c in plan.columns if c.name in export.key and c.name not in have]
    template = export.execution.template
    after = export.after
    if after is not None:  # typed, so each source compares it as the key column's type
        after = key_values(after, key_types(template.fields, export.key))
    return replace(
        plan,
        fields=[*plan.fields, *extra],
        order=list(export.key),
        after=after,
        limit=export.limit + 1,
        parallelism=1,  # in key order, one job's slice at a time
    )


_ORDERED = (int, float, bytes, date, time)


def _check_advances(first: list[Any], after: list[Any]) -> None:
    """Fail unless the job's first row comes after the cursor. A source whose stored values
    do not order like their values (before 2026-12-04 a SQLite source's text
    '2026-01-01T00:00:00' in a TIMESTAMP column, compared with the cursor's '2026-01-01
    00:00:00'; it now orders and compares dates as instants: ``sources/sqlite.py``) returns
    rows the chain has already delivered: a duplicate, or a chain that never ends. Text keys
    are left to the source's collation, which Python's order is not, and so are decimals (a
    SQLite warehouse orders their exact text); numbers, times and bytes order in Python as in
    every source."""
    for new, old in zip(first, after, strict=True):
        if new == old:
            continue
        try:
            behind = isinstance(new, _ORDERED) and bool(new < old)
        except TypeError:  # naive vs aware: the source decides
            behind = False
        if not behind:
            return
        break
    shown = ", ".join(str(key_json(v)) for v in first)
    raise _unpageable(
        f"the source returned the key ({shown}) again after the job's cursor: the key "
        "column's stored values do not compare as their type (e.g. SQLite text in another "
        "date format than ISO 'YYYY-MM-DD HH:MM:SS')"
    )


def _unpageable(reason: str) -> RunFailure:
    return RunFailure(
        f"{reason}, so this object cannot be paged by its key; export it whole with an extraction"
    )


def _check_resumable(table: str, key: list[str], last: list[Any], following: list[Any]) -> None:
    """Fail unless the next job, which starts after ``last``, starts with ``following``.
    A key holding NULL compares with no cursor (``(a, b) > (1, NULL)`` is never true: a
    SQLite PRIMARY KEY column other than an INTEGER PRIMARY KEY may hold NULLs), and a row
    whose key reads the same as the last one's (SQLite text of one instant in two forms)
    is not after it: either way the next job would skip rows."""
    for name, value in zip(key, last, strict=True):
        if value is None:
            raise RunFailure(
                f"the job would end on a key holding NULL in its column {name!r} (table "
                f"{table}): a NULL compares with no cursor, so the next job would skip rows "
                "and this object cannot be paged by its key; export it whole with an extraction"
            )
    if following == last:
        shown = ", ".join(str(key_json(v)) for v in last)
        raise _unpageable(
            f"two rows of table {table} read as the same key ({shown}) where the job would "
            "end: the next job, which starts after that key, would skip the second (e.g. SQLite "
            "text of one instant in two forms, '2026-01-01 05:00:00' and '2026-01-01 "
            "10:00:00+05:00')"
        )


def _table_name(export: ExportSpec) -> str:
    """The table an export reads, as errors name it: a data table by its name."""
    source = export.execution.template.source
    return export.object if export.kind == DATA_TABLE or source is None else source.display


def _write(
    sink: FileSink,
    plan: ReadPlan,
    export: ExportSpec,
    names: list[str],
    source: Source,
    control: RunControl,
    parts: ExportParts,
) -> tuple[WrittenFile, list[Any] | None, bool]:
    """Through Arrow: the file, the last written row's key, and whether more rows remain
    (the plan reads one row past the job for that)."""
    last: list[Any] | None = None
    following: list[Any] = []  # the first row past the job's end (not written)
    more = False
    for batch in parts.batches(plan, source, control):
        room = export.limit - sink.rows
        if batch.num_rows > room:
            following = [batch.column(k)[room].as_py() for k in export.key]
            more, batch = True, batch.slice(0, room)
        if batch.num_rows:
            if last is None and plan.after is not None:
                _check_advances([batch.column(k)[0].as_py() for k in export.key], plan.after)
            end = batch.num_rows - 1
            last = [batch.column(k)[end].as_py() for k in export.key]
            sink.write(batch.select(names))
            control.report(sink.rows)
        if more:
            break
    if more and last is not None:
        _check_resumable(_table_name(export), export.key, last, following)
    return sink.close(), last, more


def run_export(
    claimed: ClaimedRun,
    export: ExportSpec,
    source: Source,
    control: RunControl,
    parts: ExportParts,
) -> Outcome:
    spec = export.execution
    output = select_fields(spec.template.fields, spec.configuration.fields)
    names = [f.name for f in output]
    fmt = spec.configuration.format
    native = spec.configuration.csv_dialect == POSTGRES_DIALECT
    keyset = source if isinstance(source, KeysetSource) else None
    if native and keyset is None and not isinstance(source, WarehouseTable):
        # the warehouse changed since the request was admitted (a table never loaded is read
        # by Warehouse.read: its empty file is the same in either rendering)
        raise RunFailure("csvDialect 'postgres' needs a PostgreSQL source")
    plan = export_plan(export)
    # CSV or JSONL from PostgreSQL: the slice is fixed in a snapshot, then COPY writes it.
    copy_plan = replace(plan, fields=output, limit=export.limit)
    rendering = copy_rendering(fmt, native)
    fast = (
        rendering is not None
        and keyset is not None
        and (native or keyset.can_copy(copy_plan, rendering))
    )
    name = f"{claimed.execution_id}.{file_extension(fmt, 'none')}"  # the request id
    sink = FileSink(
        parts.storage,
        tmp_key(claimed.workspace_id, claimed.run_id, claimed.lease_token, name),
        fmt,
        "none",
        arrow_schema(output),
        parts.buffer_bytes,
        name,
        blocks=fast,
    )
    try:
        if fast:
            assert keyset is not None
            with control.awaiting_source():
                assert rendering is not None
                rows, last, more = keyset.copy_keyset(
                    copy_plan, sink.stream, control.report, rendering
                )
            file = sink.close(rows)
        else:
            file, last, more = _write(sink, plan, export, names, source, control, parts)
    except BaseException:
        sink.abort()
        raise
    control.checkpoint()
    # One name per request: another attempt of the job publishes the same key.
    final = storage_key(claimed.workspace_id, EXPORT_FOLDER, name)
    if not parts.queue.mark_publishing(claimed, [final]):
        raise LeaseLost
    try:
        parts.storage.publish(sink.key, final)
    except DestinationExists as exc:
        # An earlier attempt's file, published but never recorded: the reaper deletes it
        # (storage_leftovers), after which another attempt publishes.
        raise TransientFailure(
            f"an earlier attempt's file is still in the store at {exc.key!r}; the reaper deletes it"
        ) from exc
    parts.clean()  # its file moved out; the empty folders go too
    record = FileRecord(
        sub_extract_id=ALL,
        sub_extract_value=None,
        storage_key=final,
        file_name=name,
        content_type=content_type(fmt, "none"),
        size_bytes=file.size,
        sha256=file.sha256,
        record_count=file.rows,
    )
    after = [key_json(v) for v in last] if more and last is not None else None
    return Outcome(RunStatus.COMPLETED, file.rows, files=[record], result={"after": after})
