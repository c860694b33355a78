"""Executions of a configuration: trigger, poll, list, re-run, cancel, download."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from egress.api.auth import CurrentPrincipal, Services
from egress.api.downloads import serve_file, stream_zip
from egress.api.routers.common import page_request
from egress.api.schemas import (
    ExecutionOut,
    ExecutionSummaryOut,
    FileOut,
    ListEnvelope,
    ProgressOut,
    RunOut,
    SubExtractOut,
    SubExtractStatusOut,
    TriggerRequest,
)
from egress.db.executions import ExecutionRecord, FileRecord, RunRecord
from egress.domain.paging import PageRequest
from egress.domain.split import ALL
from egress.domain.status import RunStatus
from egress.services import executions as service

PREFIX = "/api/v1/extraction-configurations/{config_id}/executions"
router = APIRouter(prefix=PREFIX, tags=["executions"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="same key + same body within 24 h returns the same execution",
    ),
]


def _base(config_id: str, execution_id: str) -> str:
    return f"/api/v1/extraction-configurations/{config_id}/executions/{execution_id}"


def _progress(run: RunRecord) -> ProgressOut | None:
    """Records read: while the run is in progress, and where it stopped when it failed or was
    cancelled (such a run delivered nothing, so it has no record count)."""
    if run.status is RunStatus.IN_PROGRESS:
        return ProgressOut(processed=run.processed or 0)
    if run.status in (RunStatus.FAILED, RunStatus.CANCELLED) and run.processed is not None:
        return ProgressOut(processed=run.processed)
    return None


def _path(execution: ExecutionRecord, name: str) -> str:
    """Seed 000's ``fileName``: the path under the destination, e.g. ``/exports/orders/x.csv``
    (the workspace prefix of the storage key is not the user's to see)."""
    folder = execution.parameters["configuration"]["destination"].get("path", "")
    return "/" + "/".join(p for p in (folder, name) if p)


def _file_out(execution: ExecutionRecord, url: str, f: FileRecord) -> FileOut:
    return FileOut(
        file_name=_path(execution, f.file_name),
        name=f.file_name,
        download_url=url,
        size_bytes=f.size_bytes,
        sha256=f.sha256,
    )


def _sub_extracts(base: str, execution: ExecutionRecord, run: RunRecord) -> list[SubExtractOut]:
    if not service.is_split(execution):
        whole = run.files[0] if run.files else None
        url = f"{base}/sub-extracts/{ALL}/download?run={run.run_number}"
        return [
            SubExtractOut(
                id=ALL,
                value=None,
                status=run.status.value,
                record_count=run.record_count,
                file=_file_out(execution, url, whole) if whole else None,
            )
        ]
    return [
        SubExtractOut(
            id=f.sub_extract_id,
            value=f.sub_extract_value,
            status=run.status.value,
            record_count=f.record_count,
            file=_file_out(
                execution,
                f"{base}/sub-extracts/{f.sub_extract_id}/download?run={run.run_number}",
                f,
            ),
        )
        for f in run.files
    ]


def _run_file(base: str, execution: ExecutionRecord, run: RunRecord) -> FileOut | None:
    if not run.files:
        return None
    url = f"{base}/download?run={run.run_number}"
    if service.is_split(execution):
        name = _zip_name(execution, run)
        return FileOut(file_name=_path(execution, name), name=name, download_url=url)
    return _file_out(execution, url, run.files[0])


def _zip_name(execution: ExecutionRecord, run: RunRecord) -> str:
    name = execution.parameters["configuration"]["name"]
    return f"{name}_{execution.id[:8]}_v{run.run_number}.zip"


def _run_out(execution: ExecutionRecord, run: RunRecord) -> RunOut:
    base = _base(execution.configuration_id, execution.id)
    return RunOut(
        run=run.run_number,
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
        file=_run_file(base, execution, run),
        sub_extracts=_sub_extracts(base, execution, run),
        progress=_progress(run),
    )


def details(execution: ExecutionRecord) -> ExecutionOut:
    latest = execution.latest
    cfg = execution.parameters["configuration"]
    runs = [_run_out(execution, r) for r in execution.runs]
    return ExecutionOut(
        extract_configuration_name=cfg["name"],
        extract_configuration_id=execution.configuration_id,
        id=execution.id,
        latest_status=latest.status.value,
        latest_process_id=latest.process_id,
        latest_record_count=latest.record_count,
        created_at=execution.created_at,
        trigger=execution.trigger,
        options=execution.parameters.get("options", {}),
        window=execution.parameters.get("window"),
        progress=_progress(latest),
        sub_extracts=runs[-1].sub_extracts,
        runs=runs,
    )


def _accepted(execution: ExecutionRecord, response: Response) -> ExecutionOut:
    response.headers["Location"] = _base(execution.configuration_id, execution.id)
    return details(execution)


OptionalTrigger = Annotated[TriggerRequest | None, Body()]


@router.post("", status_code=202, response_model=ExecutionOut)
def trigger_execution(
    config_id: str,
    response: Response,
    c: Services,
    p: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
    body: OptionalTrigger = None,
) -> ExecutionOut:
    options = body.model_dump(by_alias=True, exclude_unset=True) if body else {}
    execution, _created = service.trigger(
        c, p.workspace_id, config_id, options, idempotency_key=idempotency_key
    )
    return _accepted(execution, response)


@router.get("", response_model=ListEnvelope[ExecutionSummaryOut])
def list_executions(
    config_id: str,
    c: Services,
    p: CurrentPrincipal,
    page: Annotated[PageRequest, Depends(page_request)],
) -> ListEnvelope[ExecutionSummaryOut]:
    c.configurations.get(p.workspace_id, config_id)
    result = c.executions.list_page(p.workspace_id, config_id, page)
    items = [
        ExecutionSummaryOut(
            id=s.id,
            extract_configuration_id=s.configuration_id,
            latest_status=s.latest_status.value,
            latest_started_at=s.latest_started_at,
            latest_completed_at=s.latest_completed_at,
            latest_run_record_count=s.latest_record_count,
            total_runs=s.total_runs,
        )
        for s in result.items
    ]
    return ListEnvelope.of(items, page.page, page.limit, result.total)


@router.get("/{execution_id}", response_model=ExecutionOut)
def get_execution(
    config_id: str, execution_id: str, c: Services, p: CurrentPrincipal
) -> ExecutionOut:
    return details(c.executions.get(p.workspace_id, config_id, execution_id))


@router.post("/{execution_id}/rerun", status_code=202, response_model=ExecutionOut)
def rerun_execution(
    config_id: str,
    execution_id: str,
    response: Response,
    c: Services,
    p: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> ExecutionOut:
    c.executions.get(p.workspace_id, config_id, execution_id)
    execution = service.rerun(c, p.workspace_id, config_id, execution_id, idempotency_key)
    return _accepted(execution, response)


@router.post("/{execution_id}/cancel", status_code=202, response_model=ExecutionOut)
def cancel_execution(
    config_id: str, execution_id: str, c: Services, p: CurrentPrincipal
) -> ExecutionOut:
    return details(service.cancel(c, p.workspace_id, config_id, execution_id))


# Run numbers are 32-bit in the database: a larger one cannot exist (422, not an overflow).
RunQuery = Annotated[
    int | None, Query(ge=1, le=2**31 - 1, description="run number; default: latest")
]
_DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}},
    206: {},
    307: {"description": "object storage: `Location` is a presigned URL of the file"},
    416: {},
}


@router.api_route(
    "/{execution_id}/download",
    methods=["GET", "HEAD"],
    response_class=StreamingResponse,
    responses=_DOWNLOAD_RESPONSES,
)
def download(
    config_id: str,
    execution_id: str,
    request: Request,
    c: Services,
    p: CurrentPrincipal,
    run: RunQuery = None,
) -> Response:
    """The run's file; for a split run, a zip of all its parts (streamed from storage even on a
    bucket: there is no single object to redirect to)."""
    execution = c.executions.get(p.workspace_id, config_id, execution_id)
    record = service.run_with_files(execution, run)
    if service.is_split(execution):
        return stream_zip(c.storage, _zip_name(execution, record), record.files)
    return serve_file(request, c.storage, record.files[0], c.settings.download_url_ttl_s)


@router.get("/{execution_id}/sub-extracts/{sub_extract_id}", response_model=SubExtractStatusOut)
def get_sub_extract(
    config_id: str,
    execution_id: str,
    sub_extract_id: str,
    c: Services,
    p: CurrentPrincipal,
    run: RunQuery = None,
) -> SubExtractStatusOut:
    execution = c.executions.get(p.workspace_id, config_id, execution_id)
    record, f = service.sub_extract(execution, sub_extract_id, run)
    base = _base(config_id, execution_id)
    url = f"{base}/sub-extracts/{sub_extract_id}/download?run={record.run_number}"
    return SubExtractStatusOut(
        id=sub_extract_id,
        value=f.sub_extract_value if f else None,
        execution_id=execution.id,
        run=record.run_number,
        status=record.status.value,
        record_count=f.record_count if f else record.record_count,
        file=_file_out(execution, url, f) if f else None,
    )


@router.api_route(
    "/{execution_id}/sub-extracts/{sub_extract_id}/download",
    methods=["GET", "HEAD"],
    response_class=StreamingResponse,
    responses=_DOWNLOAD_RESPONSES,
)
def download_sub_extract(
    config_id: str,
    execution_id: str,
    sub_extract_id: str,
    request: Request,
    c: Services,
    p: CurrentPrincipal,
    run: RunQuery = None,
) -> Response:
    execution = c.executions.get(p.workspace_id, config_id, execution_id)
    if run is None:
        run = service.run_with_files(execution, None).run_number
    record, f = service.sub_extract(execution, sub_extract_id, run)
    if f is None:
        service.run_with_files(execution, record.run_number)  # raises the precise 404/409
        raise AssertionError("unreachable")  # pragma: no cover
    return serve_file(request, c.storage, f, c.settings.download_url_ttl_s)
