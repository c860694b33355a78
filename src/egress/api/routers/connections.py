"""/api/v1/connections: register sources, test them, browse their catalog."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from egress.api.auth import CurrentPrincipal, ManageConnection, ManageConnections, Services
from egress.api.routers.common import in_source_pool, page_request
from egress.api.schemas import (
    ConnectionCreate,
    ConnectionOut,
    ConnectionPatch,
    ConnectionTestOut,
    ListEnvelope,
)
from egress.container import Container
from egress.db.connections import ConnectionRecord
from egress.domain.errors import Invalid
from egress.domain.paging import PageRequest
from egress.services import catalog, connections

router = APIRouter(prefix="/api/v1/connections", tags=["connections"])


def _out(c: Container, r: ConnectionRecord) -> ConnectionOut:
    return ConnectionOut(
        id=r.id,
        name=r.name,
        type=r.type,
        settings=r.settings,
        secret_names=connections.secret_names(c, r),
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


@router.post("", status_code=201, response_model=ConnectionOut)
def create_connection(body: ConnectionCreate, c: Services, p: ManageConnections) -> ConnectionOut:
    record = connections.create(
        c, p.workspace_id, body.name, body.type, body.settings, body.secrets
    )
    return _out(c, record)


@router.get("", response_model=ListEnvelope[ConnectionOut])
def list_connections(
    c: Services, p: CurrentPrincipal, page: Annotated[PageRequest, Depends(page_request)]
) -> ListEnvelope[ConnectionOut]:
    result = c.connections.list_page(p.workspace_id, page)
    return ListEnvelope.of([_out(c, r) for r in result.items], page.page, page.limit, result.total)


@router.get("/{connection_id}", response_model=ConnectionOut)
def get_connection(connection_id: str, c: Services, p: CurrentPrincipal) -> ConnectionOut:
    return _out(c, c.connections.get(p.workspace_id, connection_id))


@router.patch("/{connection_id}", response_model=ConnectionOut)
def patch_connection(
    connection_id: str, body: ConnectionPatch, c: Services, p: ManageConnection
) -> ConnectionOut:
    for key in ("name", "settings"):  # null would silently mean "unchanged"
        if key in body.model_fields_set and getattr(body, key) is None:
            raise Invalid.at(("body", key), "must not be null")
    record = connections.update(
        c, p.workspace_id, connection_id, body.name, body.settings, body.secrets
    )
    return _out(c, record)


@router.delete("/{connection_id}", status_code=204)
def delete_connection(connection_id: str, c: Services, p: ManageConnection) -> Response:
    c.connections.delete(p.workspace_id, connection_id)
    return Response(status_code=204)


@router.post("/{connection_id}/test", response_model=ConnectionTestOut)
async def test_connection(
    connection_id: str, c: Services, p: CurrentPrincipal
) -> ConnectionTestOut:
    error, warnings = await in_source_pool(
        c, lambda: catalog.test_connection(c, p.workspace_id, connection_id)
    )
    return ConnectionTestOut(ok=error is None, error=error, warnings=warnings)


@router.get("/{connection_id}/elements")
async def list_elements(connection_id: str, c: Services, p: CurrentPrincipal) -> dict[str, object]:
    def browse() -> dict[str, object]:
        c.connections.get(p.workspace_id, connection_id)
        tables = catalog.discover(c, p.workspace_id, connection_id)
        return {"data": catalog.element_tree(connection_id, tables)}

    return await in_source_pool(c, browse)
