"""Seed 002's paths: each parses, calls one service method and presents the answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from egress.api.errors import relocated
from egress.api.faces.idm.presenters import request_out
from egress.api.faces.noco.presenters import extraction_out
from egress.api.faces.noco.schemas import (
    CronSchedule,
    ElementType,
    ExtractionIn,
    ExtractionOut,
    OutputConfiguration,
    RunAccepted,
    RunBody,
)
from egress.api.wiring import Editor, InSourcePool, ServicesDep, Viewer
from egress.domain.errors import FieldProblem
from egress.services.element_configurations import (
    ElementConfiguration,
    NewElementConfiguration,
)

router = APIRouter(tags=["extraction runs (seed 002)"])
WORKSPACE = "/noCo/api/v2/workspaces/{workspaceId}"
# The seed's request body, shown in the OpenAPI document: the route reads it itself, since
# the seed makes Content-Type optional (curl -d without it sends a form's type).
_BODY_DOC = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": RunBody.model_json_schema()}},
    }
}


async def _run_body(request: Request) -> RunBody:
    """The JSON body whatever its Content-Type (none at all: every record)."""
    raw = await request.body()
    if not raw.strip():
        return RunBody()
    try:
        return RunBody.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from None


def _in_query(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """``extractOnlyNew`` is a query parameter here: a problem with it is named there."""
    return ("query", "extractOnlyNew") if loc == ("body", "extract_only_new") else loc


@router.post(
    WORKSPACE + "/extraction/{extractionId}/{elementType}/{elementId}/run",
    status_code=202,
    response_model=RunAccepted,
    openapi_extra=_BODY_DOC,
)
async def run_extraction(
    workspaceId: str,
    extractionId: str,
    elementType: ElementType,
    elementId: str,
    request: Request,
    s: ServicesDep,
    p: Editor,
    extractOnlyNew: Annotated[bool, Query(description="true: only new records")] = False,
) -> RunAccepted:
    body = await _run_body(request)
    options: dict[str, Any] = {
        "extractOnlyNew": extractOnlyNew,
        **body.model_dump(exclude_unset=True),
    }
    try:
        started = await run_in_threadpool(
            s.extraction_runs.run, p, workspaceId, extractionId, elementType, elementId, options
        )
    except FieldProblem as exc:
        raise relocated(exc, _in_query) from exc
    return RunAccepted(
        requestId=started.request_id, executionId=started.execution_id, status="Pending"
    )


@router.get("/noCo/api/v1/requestLog/status/{requestId}")
def request_status(requestId: str, request: Request, s: ServicesDep, p: Viewer) -> dict[str, Any]:
    """The request resource bulk export shares (status, progress, result or error), with the
    execution an extraction run started."""
    view = s.exports.get(p, requestId, str(request.base_url))
    shown = request_out(view)
    if view.execution_id is not None:
        shown["executionId"] = view.execution_id
    return shown


# Where the configurations service names a value this face's clients send elsewhere.
_SENT_AS: dict[str | int, tuple[str | int, ...]] = {
    "name": ("title",),
    "fields": ("columnConfiguration",),
    "template_id": ("inputTableId",),
    "destination": ("outputConfiguration",),
    "schedules": ("schedule", "cronExpression"),
}


def _as_sent(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    if len(loc) > 1 and loc[0] == "body" and loc[1] in _SENT_AS:
        return ("body", *_SENT_AS[loc[1]])
    return loc


def _new(body: ExtractionIn) -> NewElementConfiguration:
    output = body.outputConfiguration or OutputConfiguration(title=body.title)
    schedule = body.schedule or CronSchedule()
    columns = body.columnConfiguration
    kept: dict[str, Any] = {"outputConfiguration": output.model_dump(exclude={"tableId"})}
    if columns is not None:
        kept["columnConfiguration"] = [c.model_dump(exclude_none=True) for c in columns]
    return NewElementConfiguration(
        title=body.title,
        element_type=body.elementType,
        element_id=body.elementId,
        template_id=body.inputTableId,
        key_ids=body.primaryKeyColumnId,
        new_table=output.createNewWorkbook,
        table_title=output.title,
        table_id=output.tableId,
        store=body.storeExtractedData,
        scheduled=body.scheduleType == "CRON",
        cron=schedule.cronExpression,
        timezone=schedule.timezone,
        columns=None if columns is None else [c.name for c in columns],
        advanced=body.extractionMode == "ADVANCED",
        kept=kept,
        id=body.id,
    )


async def _sourced(pool: InSourcePool, call: Callable[[], ElementConfiguration]) -> ExtractionOut:
    """A configuration change, in the source pool: a new key makes a template (a source call)."""
    try:
        return extraction_out(await pool(call))
    except FieldProblem as exc:
        raise relocated(exc, _as_sent) from exc


@router.post(WORKSPACE + "/extraction", status_code=201, response_model=ExtractionOut)
async def create_extraction(
    workspaceId: str, body: ExtractionIn, s: ServicesDep, p: Editor, pool: InSourcePool
) -> ExtractionOut:
    new = _new(body)
    return await _sourced(pool, lambda: s.element_configurations.create(p, workspaceId, new))


@router.put(WORKSPACE + "/extraction/{extractionId}", response_model=ExtractionOut)
async def replace_extraction(
    workspaceId: str,
    extractionId: str,
    body: ExtractionIn,
    s: ServicesDep,
    p: Editor,
    pool: InSourcePool,
) -> ExtractionOut:
    new = _new(body)
    return await _sourced(
        pool, lambda: s.element_configurations.replace(p, workspaceId, extractionId, new)
    )


@router.delete(WORKSPACE + "/extraction/{extractionId}", status_code=204)
def delete_extraction(workspaceId: str, extractionId: str, s: ServicesDep, p: Editor) -> None:
    s.element_configurations.delete(p, workspaceId, extractionId)


@router.get(WORKSPACE + "/extraction/{elementType}/{elementId}", response_model=list[ExtractionOut])
def element_extractions(
    workspaceId: str, elementType: ElementType, elementId: str, s: ServicesDep, p: Viewer
) -> list[ExtractionOut]:
    found = s.element_configurations.attached(p, workspaceId, elementType, elementId)
    return [extraction_out(e) for e in found]
