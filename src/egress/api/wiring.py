"""The dependency wiring: the one module of ``api/`` that reaches the container's parts.

Routes take what they need from here — the services, the caller (a bearer token decides the
workspace and role), the pool of interactive source calls, file downloads — and never import
``egress.db``, ``egress.sinks``, ``egress.sources`` or ``obstore`` themselves
(tests/unit/test_api_layering.py checks this). Routes that only an admin may use declare
``ManageConnections`` (or ``ManageConnection`` for one connection); the rule itself is
``domain.identity.require_admin``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from egress.api.downloads import Downloads
from egress.container import Container
from egress.domain.identity import Principal, require_admin
from egress.services import Services
from egress.services.links import LinkIssuer
from egress.sources.base import SourceError
from egress.sources.pool import SourcePool

T = TypeVar("T")
# What a source raises when it cannot be read: every face answers it as a problem of its own.
SOURCE_ERRORS: tuple[type[Exception], ...] = (SourceError,)

_bearer = HTTPBearer(auto_error=False, description="An Egress API token")


def _container(request: Request) -> Container:
    c: Container = request.app.state.container
    return c


def _services(request: Request) -> Services:
    return _container(request).services


def _now(request: Request) -> datetime:
    return _container(request).clock()


def _source_address(request: Request) -> str | None:
    """The peer's address (behind a proxy, uvicorn's ``--forwarded-allow-ips`` makes it the
    client's): what the audit trail and the failed sign-in limit count."""
    return request.client.host if request.client else None


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise HTTPException(
            401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    s = _services(request)
    return s.sign_ins.authenticate(
        _source_address(request), lambda: s.identity.authenticate(credentials.credentials)
    )


class SourceCalls:
    """Runs a request's source call (with its metadata reads) in the bounded pool of
    interactive source calls: 429 when full, and the API's own threads never wait on it."""

    def __init__(self, pool: SourcePool) -> None:
        self._pool = pool

    async def __call__(self, call: Callable[[], T]) -> T:
        return await asyncio.wrap_future(self._pool.submit(call))


def _source_calls(request: Request) -> SourceCalls:
    return SourceCalls(_container(request).source_pool)


def _downloads(request: Request) -> Downloads:
    c = _container(request)
    return Downloads(c.storage, c.settings.download_url_ttl_s)


CurrentPrincipal = Annotated[Principal, Depends(principal)]


def _link_issuer(request: Request, p: CurrentPrincipal) -> LinkIssuer:
    c = _container(request)
    base = c.settings.public_url or str(request.base_url)
    return LinkIssuer(c.services.links, base, p.actor)


SignedUrls = Annotated[LinkIssuer, Depends(_link_issuer)]
SourceAddress = Annotated[str | None, Depends(_source_address)]
ServicesDep = Annotated[Services, Depends(_services)]
Now = Annotated[datetime, Depends(_now)]
InSourcePool = Annotated[SourceCalls, Depends(_source_calls)]
FileDownloads = Annotated[Downloads, Depends(_downloads)]


def _manage_connections(p: CurrentPrincipal) -> Principal:
    require_admin(p.role, "creating, changing or deleting connections")
    return p


def _manage_connection(connection_id: str, s: ServicesDep, p: CurrentPrincipal) -> Principal:
    """Another workspace's connection is 404 before any 403."""
    s.connections.get(p.workspace_id, connection_id)
    return _manage_connections(p)


ManageConnections = Annotated[Principal, Depends(_manage_connections)]
ManageConnection = Annotated[Principal, Depends(_manage_connection)]
