"""/api/v1/templates: discovered (one per table) and custom dataset definitions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from egress.api.auth import CurrentPrincipal, Services
from egress.api.routers.common import in_source_pool, page_request
from egress.api.schemas import FieldOut, ListEnvelope, TemplateCreate, TemplateOut
from egress.container import Container
from egress.db.templates import TemplateRecord
from egress.db.workspaces import Principal
from egress.domain.errors import FieldError, Invalid, NotFound
from egress.domain.paging import PageRequest
from egress.services import catalog

router = APIRouter(prefix="/api/v1/templates", tags=["templates"])


def _out(t: TemplateRecord) -> TemplateOut:
    return TemplateOut(
        id=t.id,
        name=t.name,
        kind=t.kind,
        connection_id=t.connection_id,
        table=None if t.source is None else t.source_table,
        schema_=None if t.source is None else t.source.schema,
        table_name=None if t.source is None else t.source.name,
        query=t.query,
        fields=[FieldOut(name=f.name, type=f.type, nullable=f.nullable) for f in t.fields],
        primary_key=t.primary_key,
        cursor_field=t.cursor_field,
        date_field=t.date_field,
    )


@router.get("", response_model=ListEnvelope[TemplateOut])
async def list_templates(
    c: Services,
    p: CurrentPrincipal,
    page: Annotated[PageRequest, Depends(page_request)],
    connection_id: Annotated[
        str | None,
        Query(alias="connectionId", description="discover this connection's tables first"),
    ] = None,
) -> ListEnvelope[TemplateOut]:
    def listed() -> ListEnvelope[TemplateOut]:
        if connection_id is not None:
            catalog.discover(c, p.workspace_id, connection_id)
        result = c.templates.list_page(p.workspace_id, connection_id, page)
        items = [_out(t) for t in result.items]
        return ListEnvelope.of(items, page.page, page.limit, result.total)

    if connection_id is None:  # no source call: the API's own threads
        return await run_in_threadpool(listed)
    return await in_source_pool(c, listed)


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
async def create_template(body: TemplateCreate, c: Services, p: CurrentPrincipal) -> TemplateOut:
    """Both kinds read the source (its catalog, or the query's columns): in the source pool."""
    return await in_source_pool(c, lambda: _create_template(body, c, p))


def _create_template(body: TemplateCreate, c: Container, p: Principal) -> TemplateOut:
    _one_of_table_or_query(body)
    try:
        c.connections.get(p.workspace_id, body.connection_id)
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
        return _out(
            catalog.create_query_template(
                c,
                p.workspace_id,
                body.connection_id,
                body.name,
                body.query,
                body.primary_key,
                body.cursor_field,
                body.date_field,
                role=p.role,
            )
        )
    assert body.table is not None  # one of the two, checked above
    return _out(
        catalog.create_custom_template(
            c,
            p.workspace_id,
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
    )


@router.get("/{template_id}", response_model=TemplateOut)
def get_template(template_id: str, c: Services, p: CurrentPrincipal) -> TemplateOut:
    return _out(c.templates.get(p.workspace_id, template_id))
