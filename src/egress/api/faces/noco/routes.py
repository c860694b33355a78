"""Seed 002's paths: each parses, calls one service method and presents the answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from egress.api.errors import relocated
from egress.api.faces.idm.presenters import request_out
from egress.api.faces.noco.schemas import ElementType, RunAccepted, RunBody
from egress.api.wiring import Editor, ServicesDep, Viewer
from egress.domain.errors import FieldProblem

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
