"""/api/v1/connections: register sources, test them, browse their catalog."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from egress.api.native.presenters import connection_out, element_tree
from egress.api.native.routes.common import page_request
from egress.api.native.schemas import (
    ConnectionCreate,
    ConnectionOut,
    ConnectionPatch,
    ConnectionTestOut,
    ListEnvelope,
)
from egress.api.wiring import (
    Editor,
    InSourcePool,
    ManageConnection,
    ManageConnections,
    ServicesDep,
    Viewer,
)
from egress.domain.errors import Invalid
from egress.domain.paging import PageRequest
from egress.services.connections import ConnectionRecord, ConnectionService

router = APIRouter(prefix="/api/v1/connections", tags=["connections"])


def _out(service: ConnectionService, r: ConnectionRecord) -> ConnectionOut:
    return connection_out(r, service.secret_names(r))


@router.post("", status_code=201, response_model=ConnectionOut)
def create_connection(
    body: ConnectionCreate, s: ServicesDep, p: ManageConnections
) -> ConnectionOut:
    record = s.connections.create(
        p.workspace_id, body.name, body.type, body.settings, body.secrets, by=p
    )
    return _out(s.connections, record)


@router.get("", response_model=ListEnvelope[ConnectionOut])
def list_connections(
    s: ServicesDep, p: Viewer, page: Annotated[PageRequest, Depends(page_request)]
) -> ListEnvelope[ConnectionOut]:
    result = s.connections.list_page(p.workspace_id, page)
    items = [_out(s.connections, r) for r in result.items]
    return ListEnvelope.of(items, page.page, page.limit, result.total)


@router.get("/{connection_id}", response_model=ConnectionOut)
def get_connection(connection_id: str, s: ServicesDep, p: Viewer) -> ConnectionOut:
    return _out(s.connections, s.connections.get(p.workspace_id, connection_id))


@router.patch("/{connection_id}", response_model=ConnectionOut)
def patch_connection(
    connection_id: str, body: ConnectionPatch, s: ServicesDep, p: ManageConnection
) -> ConnectionOut:
    for key in ("name", "settings"):  # null would silently mean "unchanged"
        if key in body.model_fields_set and getattr(body, key) is None:
            raise Invalid.at(("body", key), "must not be null")
    record = s.connections.update(
        p.workspace_id, connection_id, body.name, body.settings, body.secrets, by=p
    )
    return _out(s.connections, record)


@router.delete("/{connection_id}", status_code=204)
def delete_connection(connection_id: str, s: ServicesDep, p: ManageConnection) -> Response:
    s.connections.delete(p.workspace_id, connection_id, by=p)
    return Response(status_code=204)


@router.post("/{connection_id}/test", response_model=ConnectionTestOut)
async def test_connection(
    connection_id: str, s: ServicesDep, p: Editor, pool: InSourcePool
) -> ConnectionTestOut:
    error, warnings = await pool(lambda: s.catalog.test_connection(p.workspace_id, connection_id))
    return ConnectionTestOut(ok=error is None, error=error, warnings=warnings)


@router.get("/{connection_id}/elements")
async def list_elements(
    connection_id: str, s: ServicesDep, p: Viewer, pool: InSourcePool
) -> dict[str, object]:
    tables = await pool(lambda: s.catalog.elements(p.workspace_id, connection_id))
    return {"data": element_tree(connection_id, tables)}
