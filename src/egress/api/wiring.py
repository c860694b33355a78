"""The dependency wiring: the one module of ``api/`` that reaches the container's parts.

Routes take what they need from here — the services, the caller (a bearer token decides the
workspace and role), the pool of interactive source calls, file downloads — and never import
``egress.db``, ``egress.sinks``, ``egress.sources`` or ``obstore`` themselves
(tests/unit/test_api_layering.py checks this).

Every route that needs a caller declares its minimum role with one of ``Viewer``, ``Editor``
or ``Admin`` (``Requires(role)``; ``ManageConnection`` also looks the connection up first, so
another workspace's is 404, not 403). ``minimum_role`` reads that declaration back:
``declare_roles`` publishes it in the OpenAPI document (``x-egress-role``) and the route matrix
test (tests/security/test_route_matrix.py) refuses a route that declares none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from egress.api.downloads import Downloads
from egress.container import Container
from egress.db.engine import unavailable
from egress.domain.identity import ADMIN, EDITOR, VIEWER, Principal, require_role
from egress.services import Services
from egress.services.links import LinkIssuer
from egress.sinks.writers import CONTENT_TYPES
from egress.sources.base import SourceError
from egress.sources.pool import SourcePool

T = TypeVar("T")
# What a source raises when it cannot be read: every face answers it as a problem of its own.
SOURCE_ERRORS: tuple[type[Exception], ...] = (SourceError,)
# What a database error means to a client when it is not the request's fault (503), if anything.
DATABASE_UNAVAILABLE = unavailable

# What a downloaded file can be, for the OpenAPI document: each format, gzipped, or a split
# run's parts zipped together.
FILE_CONTENT: dict[str, Any] = {
    media.split(";")[0]: {"schema": {"type": "string", "format": "binary"}}
    for media in (*CONTENT_TYPES.values(), "application/gzip", "application/zip")
}

_bearer = HTTPBearer(auto_error=False, description="An Egress API token")


def _container(request: Request) -> Container:
    c: Container = request.app.state.container
    return c


def services(request: Request) -> Services:
    return _container(request).services


# The dependencies below only look something up: they are ``async`` so that FastAPI calls
# them in the event loop, where a sync one would cost a hop to the thread pool and back (a
# status poll is dominated by such per-request overheads, not by its query).
async def _services_dep(request: Request) -> Services:
    return services(request)


async def _now(request: Request) -> datetime:
    return _container(request).clock()


def _source_address(request: Request) -> str | None:
    """The peer's address (behind a proxy, uvicorn's ``--forwarded-allow-ips`` makes it the
    client's): what the audit trail and the failed sign-in limit count."""
    return request.client.host if request.client else None


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller: from memory in the event loop when the revocation cache knows the token and
    the address (a polling client, nearly always), else in a thread (it reads the database)."""
    if credentials is None:
        raise HTTPException(
            401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    found = remembered_principal(request, credentials.credentials)
    if found is not None:
        return found
    s = services(request)
    check = _token_check(s, credentials.credentials)
    return await run_in_threadpool(s.sign_ins.authenticate, _source_address(request), check)


def _token_check(s: Services, token: str) -> Callable[[], Principal]:
    return lambda: s.identity.authenticate(token)


def remembered_principal(request: Request, token: str) -> Principal | None:
    """The caller of ``token`` as the revocation cache remembers it, without the database
    (None: it takes a read, or recording a failure)."""
    s = services(request)
    return s.sign_ins.remembered(_source_address(request), _token_check(s, token))


def reads_in_event_loop(request: Request) -> bool:
    """Whether a short metadata read may run in the event loop: a SQLite WAL read takes about
    100 µs and never waits for the write lock, less than the hop to a thread and back."""
    return _container(request).engine.dialect.name == "sqlite"


class SourceCalls:
    """Runs a request's source call (with its metadata reads) in the bounded pool of
    interactive source calls: 429 when full, and the API's own threads never wait on it."""

    def __init__(self, pool: SourcePool) -> None:
        self._pool = pool

    async def __call__(self, call: Callable[[], T]) -> T:
        return await asyncio.wrap_future(self._pool.submit(call))


async def _source_calls(request: Request) -> SourceCalls:
    return SourceCalls(_container(request).source_pool)


async def _downloads(request: Request) -> Downloads:
    c = _container(request)
    return Downloads(c.storage, c.settings.download_url_ttl_s)


async def _change_version(request: Request) -> Callable[[], object | None]:
    """How to read the metadata database's change version (``db/changes.py``; None:
    unknown): what a long poll watches."""
    return _container(request).details_cache.version


CurrentPrincipal = Annotated[Principal, Depends(principal)]
ChangeVersion = Annotated[Callable[[], object | None], Depends(_change_version)]


async def link_issuer(request: Request, p: CurrentPrincipal) -> LinkIssuer:
    c = _container(request)
    base = c.settings.public_url or str(request.base_url)
    return LinkIssuer(c.services.links, base, p.actor)


SignedUrls = Annotated[LinkIssuer, Depends(link_issuer)]
SourceAddress = Annotated[str | None, Depends(_source_address)]
ServicesDep = Annotated[Services, Depends(_services_dep)]
Now = Annotated[datetime, Depends(_now)]
InSourcePool = Annotated[SourceCalls, Depends(_source_calls)]
FileDownloads = Annotated[Downloads, Depends(_downloads)]


class Requires:
    """A route's minimum role, as a dependency: 401 without a valid credential, 403 below it.

    The role is checked before the route looks anything up, so a 403 says nothing about
    whether an id exists."""

    def __init__(self, minimum: str, action: str = "this request") -> None:
        self.minimum = minimum
        self.action = action

    async def __call__(self, p: CurrentPrincipal) -> Principal:
        require_role(p.role, self.minimum, self.action)
        return p


Viewer = Annotated[Principal, Depends(Requires(VIEWER))]
Editor = Annotated[Principal, Depends(Requires(EDITOR))]
Admin = Annotated[Principal, Depends(Requires(ADMIN))]
_CONNECTIONS = "creating, changing or deleting connections"
ManageConnections = Annotated[Principal, Depends(Requires(ADMIN, _CONNECTIONS))]


class _ManageConnection(Requires):
    """Requires(ADMIN) for one connection, looked up first: another workspace's is 404."""

    async def __call__(  # type: ignore[override]  # FastAPI reads this signature
        self, connection_id: str, s: ServicesDep, p: CurrentPrincipal
    ) -> Principal:
        await run_in_threadpool(s.connections.get, p.workspace_id, connection_id)
        return await super().__call__(p)


ManageConnection = Annotated[
    Principal,
    Depends(_ManageConnection(ADMIN, _CONNECTIONS)),
]


def _declared(dependant: Dependant) -> set[str]:
    found = {dependant.call.minimum} if isinstance(dependant.call, Requires) else set()
    for sub in dependant.dependencies:
        found |= _declared(sub)
    return found


def minimum_role(route: APIRoute) -> str | None:
    """The role a route declares (None: it declares none — public, or a mistake)."""
    declared = _declared(route.dependant)
    assert len(declared) <= 1, f"{route.path} declares several minimum roles: {declared}"
    return declared.pop() if declared else None


def declare_roles(router: APIRouter) -> None:
    """Show each route's minimum role in the OpenAPI document as ``x-egress-role`` (call it
    before the router is included: the app copies its routes' settings)."""
    for route in router.routes:
        if isinstance(route, APIRoute) and (role := minimum_role(route)) is not None:
            route.openapi_extra = {**(route.openapi_extra or {}), "x-egress-role": role}
