"""/api/v1/templates: discovered (one per table) and custom dataset definitions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from egress.api.native.presenters import template_out
from egress.api.native.routes.common import page_request
from egress.api.native.schemas import ListEnvelope, TemplateCreate, TemplateOut
from egress.api.wiring import Editor, InSourcePool, ServicesDep, Viewer
from egress.domain.paging import PageRequest
from egress.services.catalog import NewTemplate

router = APIRouter(prefix="/api/v1/templates", tags=["templates"])


@router.get(
    "",
    response_model=ListEnvelope[TemplateOut],
    responses={404: {"description": "no such connection (connectionId)"}},
)
async def list_templates(
    s: ServicesDep,
    p: Viewer,
    pool: InSourcePool,
    page: Annotated[PageRequest, Depends(page_request)],
    connection_id: Annotated[
        str | None,
        Query(alias="connectionId", description="discover this connection's tables first"),
    ] = None,
) -> ListEnvelope[TemplateOut]:
    def listed() -> ListEnvelope[TemplateOut]:
        result = s.catalog.list_templates(p.workspace_id, connection_id, page)
        items = [template_out(t) for t in result.items]
        return ListEnvelope.of(items, page.page, page.limit, result.total)

    if connection_id is None:  # no source call: the API's own threads
        return await run_in_threadpool(listed)
    return await pool(listed)


@router.post("", status_code=201, response_model=TemplateOut)
async def create_template(
    body: TemplateCreate, s: ServicesDep, p: Editor, pool: InSourcePool
) -> TemplateOut:
    """Both kinds read the source (its catalog, or the query's columns): in the source pool."""
    values = body.model_dump()
    values["schema"] = values.pop("schema_")
    new = NewTemplate(**values)
    return template_out(await pool(lambda: s.catalog.create_template(p.workspace_id, p.role, new)))


@router.get("/{template_id}", response_model=TemplateOut)
def get_template(template_id: str, s: ServicesDep, p: Viewer) -> TemplateOut:
    return template_out(s.catalog.get_template(p.workspace_id, template_id))
