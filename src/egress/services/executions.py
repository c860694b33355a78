"""Triggering, re-running, cancelling executions, and finding their files."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from egress.container import Container
from egress.db.configurations import ConfigurationRecord
from egress.db.executions import ExecutionRecord, FileRecord, RunRecord
from egress.db.templates import TemplateRecord
from egress.domain.configuration import trigger_blocker
from egress.domain.errors import Conflict, Invalid, NotFound
from egress.domain.incremental import lag_seconds
from egress.domain.options import date_range, selection
from egress.domain.plan import KeySelection
from egress.domain.spec import ConnectionRef, ExecutionSpec, RunOptions
from egress.domain.split import ALL
from egress.domain.status import TERMINAL, RunStatus
from egress.query.where import parse_where


def _request_hash(options: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()


def trigger(
    c: Container,
    workspace_id: str,
    cfg_id: str,
    options: dict[str, Any],
    trigger_kind: str = "api",
    idempotency_key: str | None = None,
) -> tuple[ExecutionRecord, bool]:
    """Freeze the configuration and options into a new execution; its run 1 is queued."""
    now = c.clock()
    cfg = c.configurations.get(workspace_id, cfg_id)
    blocker = trigger_blocker(cfg.status, cfg.start_date, cfg.end_date, now)
    if blocker:
        raise Conflict(blocker)
    template = c.templates.get(workspace_id, cfg.template_id)
    connection = c.connections.get(workspace_id, template.connection_id)
    spec = ExecutionSpec(
        configuration=cfg.snapshot(),
        template=template.snapshot(),
        connection=ConnectionRef(connection.id, connection.type),
        options=resolve_options(cfg, template, options, c.settings.max_selected_rows),
    )
    execution, created = c.executions.create(
        workspace_id,
        cfg_id,
        spec,
        trigger_kind,
        now,
        idempotency_key=idempotency_key,
        request_hash=_request_hash(options) if idempotency_key else None,
    )
    if created:
        c.wakeup.notify()
    return execution, created


def resolve_options(
    cfg: ConfigurationRecord, template: TemplateRecord, body: dict[str, Any], max_rows: int
) -> RunOptions:
    """The trigger's options over the configuration's defaults, checked and normalised: this
    is what the execution freezes and every re-run reuses."""
    date_from = body.get("dateFrom", cfg.date_from)
    date_to = body.get("dateTo", cfg.date_to)
    where = body.get("whereClause", cfg.filter)
    only_new = bool(body.get("extractOnlyNew", cfg.extract_only_new))
    lag = lag_seconds(body.get("incrementalLag", cfg.incremental_lag), ("body", "incrementalLag"))
    date_range(template.date_field, date_from, date_to)
    if where is not None:
        parse_where(where, [f.name for f in template.fields])
    chosen = selection(
        body.get("rows"), body.get("selectAll"), template.fields, template.primary_key, max_rows
    )
    if only_new and template.cursor_field is None:
        raise Invalid.at(
            ("body", "extractOnlyNew"),
            "the template has no cursorField, so it cannot extract only new records",
        )
    return RunOptions(
        date_from=date_from,
        date_to=date_to,
        where_clause=where,
        rows=KeySelection(*chosen) if chosen else None,
        select_all=chosen is None,
        extract_only_new=only_new,
        incremental_lag=lag,
    )


def rerun(
    c: Container,
    workspace_id: str,
    cfg_id: str,
    execution_id: str,
    idempotency_key: str | None = None,
) -> ExecutionRecord:
    execution, created = c.executions.rerun(
        workspace_id, cfg_id, execution_id, c.clock(), idempotency_key
    )
    if created:
        c.wakeup.notify()
    return execution


def cancel(c: Container, workspace_id: str, cfg_id: str, execution_id: str) -> ExecutionRecord:
    execution = c.executions.cancel(workspace_id, cfg_id, execution_id, c.clock())
    c.wakeup.notify()  # a cancelled PENDING run may have released a held one
    return execution


def is_split(execution: ExecutionRecord) -> bool:
    return execution.spec.split


def run_with_files(execution: ExecutionRecord, run: int | None) -> RunRecord:
    """Run ``run``, or the latest run that has files; 404 when there is none to download."""
    if not execution.spec.configuration.to_storage:
        raise Conflict("only extractions delivered to storage produce a downloadable file")
    if run is not None:
        record = execution.run(run)
        if record is None:
            raise NotFound(f"execution {execution.id} has no run {run}")
        if not record.files:
            raise NotFound(_no_file(run, record.status))
        return record
    for record in reversed(execution.runs):
        if record.files:
            return record
    raise NotFound("no run of this execution has produced a file yet")


def sub_extract(
    execution: ExecutionRecord, sub_extract_id: str, run: int | None
) -> tuple[RunRecord, FileRecord | None]:
    """A part of run ``run`` (default latest); ``all`` is the whole of an unsplit run."""
    record = execution.latest if run is None else execution.run(run)
    if record is None:
        raise NotFound(f"execution {execution.id} has no run {run}")
    found = next((f for f in record.files if f.sub_extract_id == sub_extract_id), None)
    if found is not None:
        return record, found
    if sub_extract_id == ALL and not is_split(execution):
        return record, None
    if record.status in TERMINAL:
        raise NotFound(f"run {record.run_number} has no sub-extract {sub_extract_id!r}")
    raise NotFound(
        f"sub-extract {sub_extract_id!r} is not known yet: run {record.run_number} is "
        f"{record.status.value}, and parts appear when it completes"
    )


def _no_file(run: int, status: RunStatus) -> str:
    if status is RunStatus.COMPLETED_NO_DATA:
        return f"run {run} matched no records, so it has no file"
    return f"run {run} has no file (status {status.value})"
