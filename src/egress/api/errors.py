"""Every error is RFC 9457 problem JSON naming the field and the problem; never a stack trace."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from egress.domain.errors import (
    BadRequest,
    Busy,
    Conflict,
    EgressError,
    FieldError,
    FieldProblem,
    Forbidden,
    NotFound,
    Unauthenticated,
    describe,
)

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Dialect:
    """How a face words its problems beyond RFC 9457's members: the status of input it cannot
    process (a vendor that documents no 422 answers 400), and whether the body repeats
    ``detail`` as the vendor's ``details`` member."""

    unprocessable: int = 422
    details: bool = False


NATIVE = Dialect()


def problem(
    status: int,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    dialect: Dialect = NATIVE,
) -> JSONResponse:
    if status == 422:
        status = dialect.unprocessable
    body: dict[str, Any] = {
        "type": f"https://egress.dev/problems/{status}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    if dialect.details:
        body["details"] = detail
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _pointer(loc: tuple[str | int, ...] | list[str | int]) -> str:
    """``("body", "destination", "path")`` → ``destination.path``; query/header keep their kind."""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "body"


def _validation(request: Request, exc: Exception, dialect: Dialect) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in raw):
        err = next(e for e in raw if e.get("type") == "json_invalid")
        reason = (err.get("ctx") or {}).get("error", "invalid JSON")
        return problem(400, f"the request body is not valid JSON: {reason}", dialect=dialect)
    hint = _content_type_hint(request)
    errors = [
        {
            "field": _pointer(e["loc"]),
            "location": str(e["loc"][0]),
            "message": e["msg"] + (hint if tuple(e["loc"]) == ("body",) else ""),
        }
        for e in raw
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(422, f"invalid request: {summary}", errors, dialect=dialect)


def _content_type_hint(request: Request) -> str:
    """Why a body that may well be JSON was not read as one: FastAPI parses a body as JSON
    only when its Content-Type says so, and the bare "Input should be a valid dictionary"
    did not say that."""
    sent = request.headers.get("content-type", "")
    if "json" in sent:
        return ""
    named = f"Content-Type {sent!r}" if sent else "no Content-Type"
    return f" (the body was sent with {named}: send it as JSON, Content-Type: application/json)"


# Sent with every 401, so clients know to present (another) bearer token.
CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


# A face's name for a field, given its logical name (``date_from`` → ``dateFrom`` natively).
WireName = Callable[[str], str]


def wire_loc(loc: tuple[str | int, ...], wire_name: WireName) -> tuple[str | int, ...]:
    """A logical location named as the face's clients send it. Only the top-level field is
    renamed: below it are the client's own keys (connection settings, row values)."""
    if len(loc) < 2 or not isinstance(loc[1], str):
        return loc
    return (loc[0], wire_name(loc[1]), *loc[2:])


def relocated(
    exc: FieldProblem, move: Callable[[tuple[str | int, ...]], tuple[str | int, ...]]
) -> FieldProblem:
    """``exc`` with each field's location moved by ``move``: where a face's clients send a
    field the services know elsewhere (inside ``template_settings``, in the query string)."""
    errors = [FieldError(move(e.loc), e.msg) for e in exc.errors]
    detail = exc.detail
    if len(exc.errors) == 1 and detail == describe(exc.errors[0].loc, exc.errors[0].msg):
        detail = describe(errors[0].loc, errors[0].msg)  # made by ``at``: name it anew
    return type(exc)(detail=detail, errors=errors)


def _field_problem(exc: FieldProblem, wire_name: WireName, dialect: Dialect) -> JSONResponse:
    located = [FieldError(wire_loc(e.loc, wire_name), e.msg) for e in exc.errors]
    detail = exc.detail
    if len(exc.errors) == 1 and detail == describe(exc.errors[0].loc, exc.errors[0].msg):
        detail = describe(located[0].loc, located[0].msg)  # made by ``at``: name it anew
    errors = [
        {"field": _pointer(e.loc), "location": str(e.loc[0]), "message": e.msg} for e in located
    ]
    status = 400 if isinstance(exc, BadRequest) else 422
    return problem(status, detail, errors, dialect=dialect)


def _egress(
    request: Request, exc: Exception, wire_name: WireName, dialect: Dialect
) -> JSONResponse:
    assert isinstance(exc, EgressError)
    if isinstance(exc, Unauthenticated):
        return problem(401, exc.detail, headers=CHALLENGE, dialect=dialect)
    if isinstance(exc, FieldProblem):
        return _field_problem(exc, wire_name, dialect)
    status = 400
    headers = None
    if isinstance(exc, NotFound):
        status = 404
    elif isinstance(exc, Forbidden):
        status = 403
    elif isinstance(exc, Conflict):
        status = 409
    elif isinstance(exc, Busy):
        status, headers = 429, {"Retry-After": str(exc.retry_after_s)}
    return problem(status, exc.detail, headers=headers, dialect=dialect)


def _source(request: Request, exc: Exception, dialect: Dialect) -> JSONResponse:
    return problem(
        422,
        f"the connection's source could not be read: {exc}",
        [{"field": "connection", "location": "path", "message": str(exc)}],
        dialect=dialect,
    )


def _allowed(request: Request) -> str:
    """Every method the app's OpenAPI document lists for the request's path: Starlette's 405
    names only those of the first route matching it, while FastAPI makes one per method."""
    root = request.scope.get("root_path", "")  # a face's mount point
    path = request.url.path.removeprefix(root) if root else request.url.path
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)), path):
            methods |= {m.upper() for m in operations}
    return ", ".join(sorted(methods))


def _http(request: Request, exc: Exception, dialect: Dialect) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed(request)
    return problem(exc.status_code, str(exc.detail), headers=headers, dialect=dialect)


def _unexpected(request: Request, exc: Exception, dialect: Dialect) -> JSONResponse:
    # exc_info=exc: a sync handler runs in a thread pool, outside the except block
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "an unexpected error occurred; it has been logged", dialect=dialect)


# A database dropped a pooled connection (a restart: the metadata pool pings only connections
# idle for a second, db/engine.py): the pool has let that connection go, so the request can
# simply be sent again. A database that refuses new connections (down, restarting) is the same
# to the client: nothing was done, try again shortly.
LOST_CONNECTION_RETRY_S = 1


def _lost_connection(
    request: Request,
    exc: DBAPIError,
    dialect: Dialect,
    unavailable: Callable[[BaseException], str | None],
) -> JSONResponse:
    detail = unavailable(exc)
    if detail is None:
        return _unexpected(request, exc, dialect)
    log.warning("%s on %s %s: %s", detail, request.method, request.url.path, exc.orig)
    return problem(
        503, detail, headers={"Retry-After": str(LOST_CONNECTION_RETRY_S)}, dialect=dialect
    )


def install(
    app: FastAPI,
    wire_name: WireName,
    source_errors: tuple[type[Exception], ...],
    unavailable: Callable[[BaseException], str | None],
    dialect: Dialect = NATIVE,
) -> None:
    """A face's error format: problem JSON naming fields by ``wire_name``, worded by
    ``dialect``; ``source_errors`` (a connection's source could not be read) answer 422 (or
    the dialect's status for it); a database error ``unavailable`` explains answers 503."""
    app.add_exception_handler(
        RequestValidationError, lambda r, e: _validation(r, e, dialect)
    )  # already in wire names
    app.add_exception_handler(EgressError, lambda r, e: _egress(r, e, wire_name, dialect))
    for source_error in source_errors:
        app.add_exception_handler(source_error, lambda r, e: _source(r, e, dialect))
    app.add_exception_handler(StarletteHTTPException, lambda r, e: _http(r, e, dialect))
    app.add_exception_handler(DBAPIError, lambda r, e: _lost_connection(r, e, dialect, unavailable))
    app.add_exception_handler(Exception, lambda r, e: _unexpected(r, e, dialect))
    app.add_middleware(CancelledAtShutdown)


class CancelledAtShutdown:
    """uvicorn cancels the requests still running when the shutdown grace ends (a thread blocked
    in a source call is left behind): they answer 503, not a 500 with a stack trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:
            log.warning("%s %s cancelled at shutdown", scope["method"], scope["path"])
            if not started:
                response = problem(503, "the server is shutting down; try again")
                await response(scope, receive, send)
