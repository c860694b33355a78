"""Signed links: a file without a bearer header, for browsers (``runs[].file.signedUrl``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from egress.api.native.routes.executions import DOWNLOAD_RESPONSES, serve_run_download
from egress.api.wiring import FileDownloads, ServicesDep, SourceAddress
from egress.services.links import RUN_FILE, link_path

router = APIRouter(prefix=link_path(RUN_FILE), tags=["executions"])


@router.api_route(
    "/{token}",
    methods=["GET", "HEAD"],
    response_class=StreamingResponse,
    responses={**DOWNLOAD_RESPONSES, 403: {"description": "the link is expired or altered"}},
)
def signed_download(
    token: str, request: Request, s: ServicesDep, files: FileDownloads, source: SourceAddress
) -> Response:
    """What the link was issued for, exactly as its download route serves it (a 307 to a
    presigned URL on a bucket); needs no bearer token — the link is the credential."""
    execution, record, f = s.executions.signed_download(token, source)
    return serve_run_download(files, request, execution, record, f)
