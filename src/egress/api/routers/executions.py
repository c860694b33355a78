"""Executions of a configuration: trigger, poll, list, re-run, cancel, download."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from egress.api.auth import CurrentPrincipal, Services
from egress.api.errors import problem
from egress.api.ranges import Unsatisfiable, parse_range
from egress.api.routers.common import page_request
from egress.api.schemas import (
    ExecutionOut,
    ExecutionSummaryOut,
    FileOut,
    ListEnvelope,
    ProgressOut,
    RunOut,
    TriggerRequest,
)
from egress.db.executions import ExecutionRecord, RunRecord
from egress.domain.paging import PageRequest
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
    if run.status is RunStatus.IN_PROGRESS:
        return ProgressOut(processed=run.processed or 0)
    return None


def _run_out(config_id: str, execution_id: str, run: RunRecord) -> RunOut:
    file = None
    if run.files:
        f = run.files[0]
        file = FileOut(
            file_name=f.file_name,
            download_url=f"{_base(config_id, execution_id)}/download?run={run.run_number}",
            size_bytes=f.size_bytes,
            sha256=f.sha256,
        )
    return RunOut(
        run=run.run_number,
        status=run.status.value,
        process_id=run.process_id,
        queued_at=run.queued_at,
        started_at=run.started_at,
        completed_at=run.completed_at,
        record_count=run.record_count,
        error_message=run.error_message,
        attempt=run.attempt,
        file=file,
        progress=_progress(run),
    )


def details(execution: ExecutionRecord) -> ExecutionOut:
    latest = execution.latest
    cfg = execution.parameters["configuration"]
    return ExecutionOut(
        extract_configuration_name=cfg["name"],
        extract_configuration_id=execution.configuration_id,
        id=execution.id,
        latest_status=latest.status.value,
        latest_process_id=latest.process_id,
        latest_record_count=latest.record_count,
        created_at=execution.created_at,
        trigger=execution.trigger,
        progress=_progress(latest),
        runs=[_run_out(execution.configuration_id, execution.id, r) for r in execution.runs],
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


@router.get(
    "/{execution_id}/download",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {}, 416: {}},
)
def download(
    config_id: str,
    execution_id: str,
    request: Request,
    c: Services,
    p: CurrentPrincipal,
    run: Annotated[
        int | None, Query(ge=1, description="run number; default latest with a file")
    ] = None,
) -> Response:
    execution = c.executions.get(p.workspace_id, config_id, execution_id)
    _run, file = service.file_of_run(execution, run)
    etag = f'"{file.sha256}"'
    digest = base64.b64encode(bytes.fromhex(file.sha256)).decode()
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Digest": f"sha-256={digest}",
        "Repr-Digest": f"sha-256=:{digest}:",
        "Content-Disposition": f'attachment; filename="{file.file_name}"',
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    try:
        byte_range = parse_range(request.headers.get("range"), file.size_bytes)
    except Unsatisfiable:
        return problem(
            416,
            f"the range is outside the file ({file.size_bytes} bytes)",
            headers={"Content-Range": f"bytes */{file.size_bytes}"},
        )
    if_range = request.headers.get("if-range")
    if byte_range is not None and if_range is not None and if_range != etag:
        byte_range = None  # the client's copy is stale: send the whole current file
    if byte_range is None:
        body: Iterator[bytes] = c.storage.stream(file.storage_key)
        headers["Content-Length"] = str(file.size_bytes)
        return StreamingResponse(body, media_type=file.content_type, headers=headers)
    body = c.storage.stream(file.storage_key, byte_range.start, byte_range.end + 1)
    headers["Content-Length"] = str(byte_range.length)
    headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{file.size_bytes}"
    return StreamingResponse(body, status_code=206, media_type=file.content_type, headers=headers)
