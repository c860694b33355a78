"""The status poll (``GET`` execution details) answered ahead of FastAPI's routing.

Clients poll this route more than all the others together, and there the framework, not the
query, was most of the cost: routing among every route, solving the dependencies, validating
the answer again against ``response_model`` and encoding it twice. ``FastPoll`` answers the
common case — a bearer token the revocation cache remembers, a viewer or above, an execution
that exists, no request body, no query string — with the route's own pieces: the same role
check, service call and presenter, the answer serialized once by pydantic. Anything else (no
or unknown token, a role too low, an unknown id, a body, ``?wait=`` — the long poll, which
the route validates and holds —, any error at all) goes on to the FastAPI route,
which answers it with the same rules and errors as every route; the route also keeps the
OpenAPI document's description of the operation.
"""

from __future__ import annotations

from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from starlette._utils import get_route_path  # what the router matches on
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from egress.api.native.presenters import execution_out
from egress.api.wiring import (
    link_issuer,
    minimum_role,
    reads_in_event_loop,
    remembered_principal,
    services,
)
from egress.domain.identity import at_least

_BODY_HEADERS = (b"content-length", b"transfer-encoding")


class FastPoll:
    """ASGI middleware answering ``route`` (the native status poll) when it can on its own."""

    def __init__(self, app: ASGIApp, route: APIRoute) -> None:
        self.app = app
        self._path = route.path_regex
        role = minimum_role(route)
        assert role is not None, f"{route.path} declares no role"
        self._role = role

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = self._path.match(get_route_path(scope))
            if match is not None:
                body = await self._answer(Request(scope), **match.groupdict())
                if body is not None:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [
                                (b"content-length", str(len(body)).encode()),
                                (b"content-type", b"application/json"),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)

    async def _answer(self, request: Request, config_id: str, execution_id: str) -> bytes | None:
        """The answer's body, or None: let the route answer (or refuse) it."""
        if any(name in _BODY_HEADERS for name, _ in request.scope["headers"]):
            return None  # the route's body checks apply
        if request.scope["query_string"]:
            return None  # ``?wait=``: the route validates it and holds the answer (long poll)
        scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            caller = remembered_principal(request, token)
            if caller is None or not at_least(caller.role, self._role):
                return None
            s = services(request)
            # Current in memory (most polls): no read, no hop to a thread.
            execution = s.executions.remembered(caller.workspace_id, config_id, execution_id)
            if execution is None and reads_in_event_loop(request):
                execution = s.executions.get(caller.workspace_id, config_id, execution_id)
            elif execution is None:
                execution = await run_in_threadpool(
                    s.executions.get, caller.workspace_id, config_id, execution_id
                )
            answer = execution_out(execution, await link_issuer(request, caller))
        except Exception:
            # The route meets the same error again and answers it (problem JSON, logging).
            return None
        return answer.model_dump_json(by_alias=True).encode()
