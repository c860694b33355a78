"""/api/v1/templates: discovered (one per table) and custom dataset definitions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from egress.api.native.presenters import template_out
from egress.api.native.routes.common import page_request
from egress.api.native.schemas import ListEnvelope, TemplateCreate, TemplateOut
from egress.api.wiring import Editor, InSourcePool, ServicesDep, Viewer
from egress.domain.errors import FieldError, Invalid, NotFound
from egress.domain.paging import PageRequest
from egress.services import Services
from egress.services.catalog import TemplateRecord

router = APIRouter(prefix="/api/v1/templates", tags=["templates"])


@router.get("", response_model=ListEnvelope[TemplateOut])
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


def _one_of_table_or_query(body: TemplateCreate) -> None:
    if (body.table is None) != (body.query is None):
        return
    msg = (
        "give either table or query, not both"
        if body.table is not None
        else "a template needs a table or a query"
    )
    raise Invalid(
        detail=f"table, query: {msg}",
        errors=[FieldError(("body", "table"), msg), FieldError(("body", "query"), msg)],
    )


@router.post("", status_code=201, response_model=TemplateOut)
async def create_template(
    body: TemplateCreate, s: ServicesDep, p: Editor, pool: InSourcePool
) -> TemplateOut:
    """Both kinds read the source (its catalog, or the query's columns): in the source pool."""
    return template_out(await pool(lambda: _create_template(body, s, p.workspace_id, p.role)))


def _create_template(
    body: TemplateCreate, s: Services, workspace_id: str, role: str
) -> TemplateRecord:
    _one_of_table_or_query(body)
    try:
        s.connections.get(workspace_id, body.connection_id)
    except NotFound as exc:
        raise Invalid.at(
            ("body", "connectionId"), f"unknown connection {body.connection_id!r}"
        ) from exc
    if body.query is not None:
        if body.column_types is not None:
            raise Invalid.at(
                ("body", "columnTypes"),
                "a SQL template's types are its query's: cast in the SELECT instead",
            )
        if body.schema_ is not None:
            raise Invalid.at(("body", "schema"), "a SQL template names its tables in the query")
        if body.fields is not None:
            raise Invalid.at(
                ("body", "fields"),
                "a SQL template's fields are its query's columns: choose them in the SELECT",
            )
        return s.catalog.create_query_template(
            workspace_id,
            body.connection_id,
            body.name,
            body.query,
            body.primary_key,
            body.cursor_field,
            body.date_field,
            role=role,
        )
    assert body.table is not None  # one of the two, checked above
    return s.catalog.create_custom_template(
        workspace_id,
        body.connection_id,
        body.name,
        body.table,
        body.fields,
        body.primary_key,
        body.cursor_field,
        body.date_field,
        body.column_types,
        schema=body.schema_,
    )


@router.get("/{template_id}", response_model=TemplateOut)
def get_template(template_id: str, s: ServicesDep, p: Viewer) -> TemplateOut:
    return template_out(s.catalog.get_template(p.workspace_id, template_id))
