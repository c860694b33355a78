"""/api/v1/connections: register sources, test them, browse their catalog."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from egress.api.auth import CurrentPrincipal, ManageConnection, ManageConnections, Services
from egress.api.routers.common import page_request, validate_model
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
from egress.services import catalog
from egress.sources import CONNECTORS

router = APIRouter(prefix="/api/v1/connections", tags=["connections"])


def _out(c: Container, r: ConnectionRecord) -> ConnectionOut:
    return ConnectionOut(
        id=r.id,
        name=r.name,
        type=r.type,
        settings=r.settings,
        secret_names=sorted(c.secret_box.open(r.sealed_secrets)),
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def _checked(type_: str, settings: dict[str, object], secrets: dict[str, str]) -> dict[str, object]:
    connector = CONNECTORS[type_]
    model = validate_model(connector.settings_model, settings, "settings")
    unknown = sorted(set(secrets) - connector.secret_names)
    if unknown:
        allowed = ", ".join(sorted(connector.secret_names)) or "none"
        raise Invalid.at(
            ("body", "secrets", unknown[0]),
            f"unknown secret for a {type_} connection (allowed: {allowed})",
        )
    return model.model_dump(mode="json")


@router.post("", status_code=201, response_model=ConnectionOut)
def create_connection(body: ConnectionCreate, c: Services, p: ManageConnections) -> ConnectionOut:
    settings = _checked(body.type, body.settings, body.secrets)
    sealed = c.secret_box.seal(body.secrets) if body.secrets else None
    return _out(c, c.connections.create(p.workspace_id, body.name, body.type, settings, sealed))


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
    current = c.connections.get(p.workspace_id, connection_id)
    for key in ("name", "settings"):  # null would silently mean "unchanged"
        if key in body.model_fields_set and getattr(body, key) is None:
            raise Invalid.at(("body", key), "must not be null")
    changes: dict[str, object] = {}
    if body.name is not None:
        changes["name"] = body.name
    secrets = c.secret_box.open(current.sealed_secrets)
    if body.secrets is not None:
        secrets = {**secrets, **body.secrets}
        changes["sealed_secrets"] = c.secret_box.seal(secrets)
    settings = current.settings if body.settings is None else body.settings
    changes["settings"] = _checked(current.type, settings, body.secrets or {})
    return _out(c, c.connections.update(p.workspace_id, connection_id, **changes))


@router.delete("/{connection_id}", status_code=204)
def delete_connection(connection_id: str, c: Services, p: ManageConnection) -> Response:
    c.connections.delete(p.workspace_id, connection_id)
    return Response(status_code=204)


@router.post("/{connection_id}/test", response_model=ConnectionTestOut)
def test_connection(connection_id: str, c: Services, p: CurrentPrincipal) -> ConnectionTestOut:
    error = catalog.test_connection(c, p.workspace_id, connection_id)
    return ConnectionTestOut(ok=error is None, error=error)


@router.get("/{connection_id}/elements")
def list_elements(connection_id: str, c: Services, p: CurrentPrincipal) -> dict[str, object]:
    c.connections.get(p.workspace_id, connection_id)
    tables = catalog.discover(c, p.workspace_id, connection_id)
    return {"data": catalog.element_tree(connection_id, tables)}
