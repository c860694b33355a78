"""The native face's answers: service results → the wire shapes of ``schemas``."""

from __future__ import annotations

import base64
import math
from dataclasses import fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from egress.api.native.schemas import (
    AuditEventOut,
    AuditObjectOut,
    BackfillOut,
    ConfigurationOut,
    ConnectionOut,
    DataTableOut,
    DataTableSummaryOut,
    ExecutionOut,
    ExecutionSummaryOut,
    FieldOut,
    FileOut,
    ProgressOut,
    RunOut,
    ScheduleOut,
    SubExtractOut,
    SubjectOut,
    TemplateOut,
)
from egress.domain.audit import AuditEvent
from egress.domain.catalog import (
    COLUMN,
    FILE,
    FOLDER,
    TableInfo,
    column_path,
    element_id,
    element_paths,
)
from egress.domain.configuration import Configuration, is_active
from egress.domain.identity import Subject
from egress.domain.schedules import local_iso, utc_iso
from egress.domain.split import ALL
from egress.domain.status import RunStatus
from egress.services.catalog import TemplateRecord
from egress.services.configurations import ConfigurationRecord, ScheduleRecord, sync_status_of
from egress.services.connections import ConnectionRecord
from egress.services.data_tables import DataTableDetails, DataTableRecord
from egress.services.executions import (
    ExecutionRecord,
    ExecutionSummary,
    FileRecord,
    RunRecord,
    is_split,
)
from egress.services.links import RUN_FILE, LinkIssuer, SignedLink


def schedule_out(s: ScheduleRecord, firing: bool) -> ScheduleOut:
    """``firing``: whether its configuration fires now (``fires``); a schedule that will not
    fire has no next run."""
    due = s.next_due_at if s.enabled and firing else None
    return ScheduleOut(
        id=s.id,
        cron=s.cron,
        timezone=s.timezone,
        enabled=s.enabled,
        date_window=s.date_window,
        next_run_at=utc_iso(due) if due else None,
        next_run_at_local=local_iso(due, ZoneInfo(s.timezone)) if due else None,
        last_fired_at=s.last_fired_at,
        gaps=s.gaps,
    )


def fires(r: ConfigurationRecord, now: datetime) -> bool:
    """Whether the configuration's schedules fire now: submitted, within its dates, not
    paused."""
    return is_active(r.status, r.start_date, r.end_date, now) and not r.paused


def configuration_out(r: ConfigurationRecord, now: datetime) -> ConfigurationOut:
    active = is_active(r.status, r.start_date, r.end_date, now)
    progress = r.backfill
    shown = {f.name: getattr(r, f.name) for f in fields(Configuration)}
    return ConfigurationOut(
        **shown,
        active=active,
        schedules=[schedule_out(s, fires(r, now)) for s in r.schedules],
        backfill=None
        if progress is None
        else BackfillOut(
            from_=progress.start,
            windows_total=progress.windows_total,
            windows_done=progress.windows_done,
            windows_failed=progress.windows_failed,
        ),
        last_sync=r.sync.last_sync,
        sync_status=sync_status_of(r, now),
        error_text=r.sync.error_text,
    )


def connection_out(r: ConnectionRecord, secret_names: list[str]) -> ConnectionOut:
    return ConnectionOut(
        id=r.id,
        name=r.name,
        type=r.type,
        settings=r.settings,
        secret_names=secret_names,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def template_out(t: TemplateRecord) -> TemplateOut:
    return TemplateOut(
        id=t.id,
        name=t.name,
        kind=t.kind,
        connection_id=t.connection_id,
        table=None if t.source is None else t.source_table,
        schema_=None if t.source is None else t.source.schema,
        table_name=None if t.source is None else t.source.name,
        query=t.query,
        fields=[FieldOut(name=f.name, type=f.type, nullable=f.nullable) for f in t.fields],
        primary_key=t.primary_key,
        cursor_field=t.cursor_field,
        date_field=t.date_field,
        csv_null_values=t.csv_null_values,
    )


def data_table_summary_out(t: DataTableRecord) -> DataTableSummaryOut:
    return DataTableSummaryOut(id=t.id, name=t.name, row_count=t.row_count, updated_at=t.updated_at)


def data_table_out(d: DataTableDetails) -> DataTableOut:
    t = d.table
    return DataTableOut(
        id=t.id,
        name=t.name,
        row_count=t.row_count,
        updated_at=t.updated_at,
        created_at=t.created_at,
        fields=[FieldOut(name=f.name, type=f.type, nullable=f.nullable) for f in t.fields],
        mode=t.mode,
        primary_key=t.primary_key,
        template_id=t.template_id,
        configurations=d.configurations,
    )


def plain(value: Any) -> Any:
    """A data table's value as JSON, as a JSONL export writes it (``sinks.render``): JSON has
    no NaN or infinities (pydantic would write null), nor decimals, bytes or durations."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Decimal):
        return format(value, "f")  # exact and plain: 0.0000000001, never 1E-10
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, timedelta):
        return _duration_text(value // timedelta(microseconds=1))
    return value


def _duration_text(micros: int) -> str:
    """``[-]HH:MM:SS.ffffff``, as ``sinks.render.duration_text`` (the API may not import the
    data plane: tests/unit/test_api_layering.py)."""
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{sign}{hours:02d}:{minute:02d}:{second:02d}.{fraction:06d}"


def execution_summary_out(s: ExecutionSummary) -> ExecutionSummaryOut:
    return ExecutionSummaryOut(
        id=s.id,
        extract_configuration_id=s.configuration_id,
        latest_status=s.latest_status.value,
        latest_started_at=s.latest_started_at,
        latest_completed_at=s.latest_completed_at,
        latest_run_record_count=s.latest_record_count,
        total_runs=s.total_runs,
    )


def execution_url(config_id: str, execution_id: str) -> str:
    return f"/api/v1/extraction-configurations/{config_id}/executions/{execution_id}"


def _progress(run: RunRecord) -> ProgressOut | None:
    """Records read: while the run is in progress, and where it stopped when it failed or was
    cancelled (such a run delivered nothing, so it has no record count)."""
    if run.status is RunStatus.IN_PROGRESS:
        return ProgressOut(processed=run.processed or 0, estimated_total=run.estimated_rows)
    if run.status in (RunStatus.FAILED, RunStatus.CANCELLED) and run.processed is not None:
        return ProgressOut(processed=run.processed, estimated_total=run.estimated_rows)
    return None


def _path(execution: ExecutionRecord, name: str) -> str:
    """Seed 000's ``fileName``: the path under the destination, e.g. ``/exports/orders/x.csv``
    (the workspace prefix of the storage key is not the user's to see)."""
    folder = execution.spec.configuration.folder
    return "/" + "/".join(p for p in (folder, name) if p)


def signed_run_file(
    links: LinkIssuer | None, execution: ExecutionRecord, run: int, sub_extract_id: str = ""
) -> SignedLink | None:
    """The signed link of a run's download (``sub_extract_id`` "") or of one of its parts."""
    if links is None:
        return None
    ids = (execution.configuration_id, execution.id, str(run), sub_extract_id)
    return links(RUN_FILE, execution.workspace_id, ids)


def _signed(signed: SignedLink | None) -> dict[str, Any]:
    if signed is None:
        return {}
    return {"signed_url": signed.url, "signed_url_expires_at": signed.expires_at}


def file_out(
    execution: ExecutionRecord, url: str, f: FileRecord, signed: SignedLink | None = None
) -> FileOut:
    return FileOut(
        file_name=_path(execution, f.file_name),
        name=f.file_name,
        download_url=url,
        size_bytes=f.size_bytes,
        sha256=f.sha256,
        **_signed(signed),
    )


def _sub_extracts(
    base: str, execution: ExecutionRecord, run: RunRecord, links: LinkIssuer | None
) -> list[SubExtractOut]:
    n = run.run_number
    if not is_split(execution):
        whole = run.files[0] if run.files else None
        url = f"{base}/sub-extracts/{ALL}/download?run={n}"
        return [
            SubExtractOut(
                id=ALL,
                value=None,
                status=run.status.value,
                record_count=run.record_count,
                file=(
                    file_out(execution, url, whole, signed_run_file(links, execution, n, ALL))
                    if whole
                    else None
                ),
            )
        ]
    return [
        SubExtractOut(
            id=f.sub_extract_id,
            value=f.sub_extract_value,
            status=run.status.value,
            record_count=f.record_count,
            file=file_out(
                execution,
                f"{base}/sub-extracts/{f.sub_extract_id}/download?run={n}",
                f,
                signed_run_file(links, execution, n, f.sub_extract_id),
            ),
        )
        for f in run.files
    ]


def _run_file(
    base: str, execution: ExecutionRecord, run: RunRecord, links: LinkIssuer | None
) -> FileOut | None:
    if not run.files:
        return None
    url = f"{base}/download?run={run.run_number}"
    signed = signed_run_file(links, execution, run.run_number)
    if is_split(execution):
        name = zip_name(execution, run)
        return FileOut(
            file_name=_path(execution, name), name=name, download_url=url, **_signed(signed)
        )
    return file_out(execution, url, run.files[0], signed)


def zip_name(execution: ExecutionRecord, run: RunRecord) -> str:
    name = execution.spec.configuration.name
    return f"{name}_{execution.id[:8]}_v{run.run_number}.zip"


def _run_out(execution: ExecutionRecord, run: RunRecord, links: LinkIssuer | None) -> RunOut:
    base = execution_url(execution.configuration_id, execution.id)
    return RunOut(
        run=run.run_number,
        kind=run.kind.value,
        status=run.status.value,
        process_id=run.process_id,
        queued_at=run.queued_at,
        started_at=run.started_at,
        completed_at=run.completed_at,
        record_count=run.record_count,
        error_message=run.error_message,
        retryable=run.retryable,
        warnings=run.warnings,
        attempt=run.attempt,
        next_attempt_at=run.next_attempt_at,
        hold_reason=run.hold_reason,
        file=_run_file(base, execution, run, links),
        sub_extracts=_sub_extracts(base, execution, run, links),
        progress=_progress(run),
    )


def subject_out(s: Subject) -> SubjectOut:
    return SubjectOut(type=s.type, id=s.id, name=s.name)


def audit_event_out(e: AuditEvent) -> AuditEventOut:
    assert e.id is not None  # read back from the table
    return AuditEventOut(
        id=e.id,
        at=e.at,
        actor=subject_out(e.actor),
        action=e.action,
        object=AuditObjectOut(type=e.object.type, id=e.object.id) if e.object else None,
        outcome=e.outcome,
        source_address=e.source_address,
        detail=e.detail,
    )


def execution_out(execution: ExecutionRecord, links: LinkIssuer | None = None) -> ExecutionOut:
    """``links``: sign each file's link for this caller (left out, files carry no signed URL)."""
    latest = execution.latest
    cfg = execution.spec.configuration
    runs = [_run_out(execution, r, links) for r in execution.runs]
    return ExecutionOut(
        extract_configuration_name=cfg.name,
        extract_configuration_id=execution.configuration_id,
        id=execution.id,
        latest_status=latest.status.value,
        latest_process_id=latest.process_id,
        latest_record_count=latest.record_count,
        created_at=execution.created_at,
        trigger=execution.trigger,
        triggered_by=subject_out(execution.triggered_by),
        schedule_id=execution.schedule_id if execution.trigger == "schedule" else None,
        due_at=execution.due_at,
        catch_up=execution.catch_up,
        options=execution.spec.options.to_json(),
        window=execution.spec.window.to_json() if execution.spec.window else None,
        progress=_progress(latest),
        sub_extracts=runs[-1].sub_extracts,
        runs=runs,
    )


def element_tree(connection_id: str, tables: list[TableInfo]) -> list[dict[str, Any]]:
    """A connection's tables as the tree of folders, files and columns the UI browses; ids
    are opaque (``domain.catalog.element_id``), ``path`` the readable name."""
    folders: dict[str, dict[str, Any]] = {}
    for t in tables:
        if t.kind == "folder":  # a folder dataset is a template, not an element of its own
            continue
        folder_path, file_path = element_paths(t.ref)
        folder = folders.setdefault(
            folder_path,
            {
                "id": element_id(connection_id, FOLDER, folder_path),
                "elementType": FOLDER,
                "name": t.schema,
                "path": folder_path,
                "children": [],
            },
        )
        folder["children"].append(
            {
                "id": element_id(connection_id, FILE, file_path),
                "elementType": FILE,
                "name": t.name,
                "path": file_path,
                "kind": t.kind,
                **({"error": t.error} if t.error is not None else {}),
                "children": [
                    {
                        "id": element_id(connection_id, COLUMN, column_path(file_path, col.name)),
                        "elementType": COLUMN,
                        "name": col.name,
                        "path": column_path(file_path, col.name),
                        "type": col.type,
                        "nullable": col.nullable,
                    }
                    for col in t.columns
                ],
            }
        )
    return list(folders.values())
