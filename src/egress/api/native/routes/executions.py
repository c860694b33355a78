"""Executions of a configuration: trigger, poll, list, re-run, cancel, download."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from egress.api.downloads import Downloads
from egress.api.long_poll import WAITERS, WaitSeconds, until_changed
from egress.api.native.presenters import (
    execution_out,
    execution_summary_out,
    execution_url,
    file_out,
    signed_run_file,
    zip_name,
)
from egress.api.native.routes.common import page_request
from egress.api.native.schemas import (
    ExecutionOut,
    ExecutionSummaryOut,
    ListEnvelope,
    SubExtractStatusOut,
    TriggerRequest,
)
from egress.api.wiring import (
    FILE_CONTENT,
    ChangeVersion,
    Editor,
    FileDownloads,
    ServicesDep,
    SignedUrls,
    Viewer,
)
from egress.domain.paging import PageRequest
from egress.domain.status import TERMINAL, RunStatus
from egress.services.executions import ExecutionRecord, FileRecord, RunRecord
from egress.services.links import LinkIssuer

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


def _accepted(execution: ExecutionRecord, response: Response, links: LinkIssuer) -> ExecutionOut:
    response.headers["Location"] = execution_url(execution.configuration_id, execution.id)
    return execution_out(execution, links)


OptionalTrigger = Annotated[TriggerRequest | None, Body()]


@router.post("", status_code=202, response_model=ExecutionOut)
def trigger_execution(
    config_id: str,
    response: Response,
    s: ServicesDep,
    p: Editor,
    links: SignedUrls,
    idempotency_key: IdempotencyKey = None,
    body: OptionalTrigger = None,
) -> ExecutionOut:
    options = body.model_dump(by_alias=True, exclude_unset=True) if body else {}
    execution, _created = s.executions.trigger(
        p.workspace_id, config_id, options, idempotency_key=idempotency_key, by=p
    )
    return _accepted(execution, response, links)


@router.get("", response_model=ListEnvelope[ExecutionSummaryOut])
def list_executions(
    config_id: str,
    s: ServicesDep,
    p: Viewer,
    page: Annotated[PageRequest, Depends(page_request)],
) -> ListEnvelope[ExecutionSummaryOut]:
    result = s.executions.list_page(p.workspace_id, config_id, page)
    items = [execution_summary_out(e) for e in result.items]
    return ListEnvelope.of(items, page.page, page.limit, result.total)


@router.get("/{execution_id}", response_model=ExecutionOut)
async def get_execution(
    config_id: str,
    execution_id: str,
    s: ServicesDep,
    p: Viewer,
    links: SignedUrls,
    version: ChangeVersion,
    wait: WaitSeconds = 0,
) -> ExecutionOut:
    """The status poll: its read is the one hop to the thread pool; presenting and checking
    the answer stay in the event loop (a sync route costs a hop for each). With ``wait``, a
    long poll: answered when the latest run's status changes or a run is added (at once when
    the latest run is finished)."""

    async def read() -> ExecutionRecord:
        return await run_in_threadpool(s.executions.get, p.workspace_id, config_id, execution_id)

    execution = await until_changed(read, _runs_state, wait, version, WAITERS, _finished)
    return execution_out(execution, links)


def _runs_state(execution: ExecutionRecord) -> tuple[int, RunStatus]:
    return len(execution.runs), execution.latest.status


def _finished(execution: ExecutionRecord) -> bool:
    return execution.latest.status in TERMINAL


@router.post("/{execution_id}/rerun", status_code=202, response_model=ExecutionOut)
def rerun_execution(
    config_id: str,
    execution_id: str,
    response: Response,
    s: ServicesDep,
    p: Editor,
    links: SignedUrls,
    idempotency_key: IdempotencyKey = None,
) -> ExecutionOut:
    execution = s.executions.rerun(p.workspace_id, config_id, execution_id, idempotency_key, by=p)
    return _accepted(execution, response, links)


@router.post("/{execution_id}/cancel", status_code=202, response_model=ExecutionOut)
def cancel_execution(
    config_id: str, execution_id: str, s: ServicesDep, p: Editor, links: SignedUrls
) -> ExecutionOut:
    return execution_out(s.executions.cancel(p.workspace_id, config_id, execution_id, by=p), links)


# Run numbers are 32-bit in the database: a larger one cannot exist (422, not an overflow).
RunQuery = Annotated[
    int | None, Query(ge=1, le=2**31 - 1, description="run number; default: latest")
]
DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": FILE_CONTENT},
    206: {"description": "the requested Range of the file", "content": FILE_CONTENT},
    307: {"description": "object storage: `Location` is a presigned URL of the file"},
    409: {"description": "the configuration loads a data table: there is no file"},
    416: {"description": "the Range is not within the file"},
}


@router.api_route(
    "/{execution_id}/download",
    methods=["GET", "HEAD"],
    response_class=StreamingResponse,
    responses=DOWNLOAD_RESPONSES,
)
def download(
    config_id: str,
    execution_id: str,
    request: Request,
    s: ServicesDep,
    p: Viewer,
    files: FileDownloads,
    run: RunQuery = None,
) -> Response:
    """The run's file; for a split run, a zip of all its parts (streamed from storage even on a
    bucket: there is no single object to redirect to)."""
    execution, record, f = s.executions.download(p.workspace_id, config_id, execution_id, run, by=p)
    return serve_run_download(files, request, execution, record, f)


def serve_run_download(
    files: Downloads,
    request: Request,
    execution: ExecutionRecord,
    record: RunRecord,
    f: FileRecord | None,
) -> Response:
    """A run's file ``f``, or (None) the zip of a split run's parts: the one way both the
    bearer download and a signed link serve it."""
    if f is None:
        return files.zip(zip_name(execution, record), record.files)
    return files.file(request, f)


@router.get("/{execution_id}/sub-extracts/{sub_extract_id}", response_model=SubExtractStatusOut)
def get_sub_extract(
    config_id: str,
    execution_id: str,
    sub_extract_id: str,
    s: ServicesDep,
    p: Viewer,
    links: SignedUrls,
    run: RunQuery = None,
) -> SubExtractStatusOut:
    execution, record, f = s.executions.sub_extract(
        p.workspace_id, config_id, execution_id, sub_extract_id, run
    )
    base = execution_url(config_id, execution_id)
    url = f"{base}/sub-extracts/{sub_extract_id}/download?run={record.run_number}"
    return SubExtractStatusOut(
        id=sub_extract_id,
        value=f.sub_extract_value if f else None,
        execution_id=execution.id,
        run=record.run_number,
        status=record.status.value,
        record_count=f.record_count if f else record.record_count,
        file=(
            file_out(
                execution,
                url,
                f,
                signed_run_file(links, execution, record.run_number, sub_extract_id),
            )
            if f
            else None
        ),
    )


@router.api_route(
    "/{execution_id}/sub-extracts/{sub_extract_id}/download",
    methods=["GET", "HEAD"],
    response_class=StreamingResponse,
    responses=DOWNLOAD_RESPONSES,
)
def download_sub_extract(
    config_id: str,
    execution_id: str,
    sub_extract_id: str,
    request: Request,
    s: ServicesDep,
    p: Viewer,
    files: FileDownloads,
    run: RunQuery = None,
) -> Response:
    f = s.executions.sub_extract_file(
        p.workspace_id, config_id, execution_id, sub_extract_id, run, by=p
    )
    return files.file(request, f)
