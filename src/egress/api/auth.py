"""Bearer tokens: every route but health needs one; the token decides the workspace and role.

Routes that only an admin may use declare ``ManageConnections`` (or ``ManageConnection`` for
one connection); the rule itself is ``domain.identity.require_admin``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from egress.container import Container
from egress.db.workspaces import Principal
from egress.domain.identity import require_admin
from egress.services import identity

_bearer = HTTPBearer(auto_error=False, description="An Egress API token")


def container(request: Request) -> Container:
    c: Container = request.app.state.container
    return c


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise HTTPException(
            401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    return identity.authenticate(container(request), credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(principal)]
Services = Annotated[Container, Depends(container)]


def _manage_connections(p: CurrentPrincipal) -> Principal:
    require_admin(p.role, "creating, changing or deleting connections")
    return p


def _manage_connection(connection_id: str, c: Services, p: CurrentPrincipal) -> Principal:
    """Another workspace's connection is 404 before any 403."""
    c.connections.get(p.workspace_id, connection_id)
    return _manage_connections(p)


ManageConnections = Annotated[Principal, Depends(_manage_connections)]
ManageConnection = Annotated[Principal, Depends(_manage_connection)]
