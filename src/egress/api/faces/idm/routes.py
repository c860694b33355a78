"""Seed 003's paths: objects, export, requests, and the signed file links of export jobs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from egress.api.faces.idm.presenters import object_out, request_out, request_summary_out
from egress.api.faces.idm.schemas import ExportBody
from egress.api.long_poll import WAITERS, WaitSeconds, until_changed
from egress.api.native.routes.common import page_request
from egress.api.wiring import (
    FILE_CONTENT,
    ChangeVersion,
    Editor,
    FileDownloads,
    ServicesDep,
    SourceAddress,
    Viewer,
)
from egress.domain.export import STATUS_FILTER, RequestStatus
from egress.domain.paging import PageRequest, total_pages
from egress.services.exports import RequestView
from egress.services.links import EXPORT_FILE, link_path

router = APIRouter(prefix="/api/v1", tags=["bulk export (seed 003)"])
# Signed file links live outside /api/, whose every route needs a bearer token: the link's
# signature is its credential.
links = APIRouter(prefix=link_path(EXPORT_FILE), tags=["bulk export (seed 003)"])
StatusName = Annotated[str | None, Query(pattern="^(Pending|InProgress|Completed|Failed)$")]


def _base(request: Request) -> str:
    return str(request.base_url)


@router.get("/idm/{firmId}/objects")
def list_objects(firmId: str, s: ServicesDep, p: Viewer) -> dict[str, Any]:
    found = s.exports.objects(p, firmId)
    return {"data": [object_out(o) for o in found]}


@router.post("/idm/{firmId}/{objects}/export")
def export(
    firmId: str,
    objects: str,
    s: ServicesDep,
    p: Editor,
    body: Annotated[ExportBody | None, Body()] = None,
) -> dict[str, str]:
    b = body or ExportBody()
    view = s.exports.export(p, firmId, objects, b.cursor, b.format, b.fields, b.csv_dialect)
    return {"requestId": view.request_id}


@router.get("/request/{requestId}")
async def get_request(
    requestId: str,
    request: Request,
    s: ServicesDep,
    p: Viewer,
    version: ChangeVersion,
    wait: WaitSeconds = 0,
) -> dict[str, Any]:
    base = _base(request)

    async def read() -> RequestView:
        return await run_in_threadpool(s.exports.get, p, requestId, base)

    return request_out(await until_changed(read, _status, wait, version, WAITERS, _finished))


def _status(view: RequestView) -> RequestStatus:
    return view.status


def _finished(view: RequestView) -> bool:
    return view.status in (RequestStatus.COMPLETED, RequestStatus.FAILED)


@router.delete("/request/{requestId}")
def cancel_request(requestId: str, s: ServicesDep, p: Editor) -> dict[str, Any]:
    return request_out(s.exports.cancel(p, requestId))


@router.get("/requests")
def list_requests(
    request: Request,
    s: ServicesDep,
    p: Viewer,
    page: Annotated[PageRequest, Depends(page_request)],
    status: StatusName = None,
) -> dict[str, Any]:
    wanted = STATUS_FILTER[status] if status is not None else None
    found = s.exports.list_page(p, wanted, page, _base(request))
    return {
        "data": [request_summary_out(v) for v in found.items],
        "page": page.page,
        "limit": page.limit,
        "totalSize": found.total,
        "totalPages": total_pages(found.total, page.limit),
    }


@links.api_route(
    "/{token}",
    methods=["GET", "HEAD"],
    responses={
        200: {"content": FILE_CONTENT},
        403: {"description": "the link is expired or altered"},
    },
)
def export_file(
    token: str, request: Request, s: ServicesDep, files: FileDownloads, source: SourceAddress
) -> Response:
    """No bearer token: the signed link is the credential (403 when expired or changed)."""
    return files.file(request, s.exports.file(token, source))
