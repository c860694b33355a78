"""Bearer tokens: every route but health needs one; the token decides the workspace."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from egress.container import Container
from egress.db.workspaces import Principal

_bearer = HTTPBearer(auto_error=False, description="An Egress API token")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def container(request: Request) -> Container:
    c: Container = request.app.state.container
    return c


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise HTTPException(401, "a bearer token is required", headers=_CHALLENGE)
    found = container(request).workspaces.principal_for_token(credentials.credentials)
    if found is None:
        raise HTTPException(
            401,
            "the bearer token is not valid",
            headers={**_CHALLENGE, "WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return found


CurrentPrincipal = Annotated[Principal, Depends(principal)]
Services = Annotated[Container, Depends(container)]
