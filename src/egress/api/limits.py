"""Request hygiene applied to every route: a body size limit enforced before anything parses the
body, and no NUL byte in any string of a JSON body."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from egress.api.errors import problem


class BodyTooLarge(HTTPException):
    """Raised while the body streams in; FastAPI passes HTTP exceptions on to the problem
    handler, and the middleware answers itself if it gets one back. The client may still be
    sending: the connection is closed rather than the rest read."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413, f"the request body is larger than {limit} bytes", headers={"Connection": "close"}
        )


class BodyLimit:
    """ASGI middleware: a ``Content-Length`` over ``max_bytes`` is answered 413 at once, without
    reading the body; a body without one (chunked) is counted as it streams and cut off at the
    limit, so no request ever holds more than ``max_bytes`` of body in memory."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = BodyTooLarge(self.max_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _answer(too_large, scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await _answer(too_large, scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we are called
    return None


async def _answer(exc: BodyTooLarge, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))
    await response(scope, receive, send)


async def reject_nul(request: Request) -> None:
    """A NUL byte in any string (or key) of a JSON body is 422 naming where: drivers and C
    libraries cut strings at NUL, so ``"127.0.0.1\\u0000x"`` would silently mean 127.0.0.1.

    FastAPI has already read and parsed the body of a route that takes one (both are cached
    on the request), so this walks the parsed value once, for every route and model alike,
    including free-form dicts such as connection settings."""
    if not await request.body() or "json" not in request.headers.get("content-type", ""):
        return
    try:
        data = await request.json()
    except ValueError:
        return  # not JSON: the route's own parsing answers 400
    errors = [
        {
            "type": "string_pattern_mismatch",
            "loc": ("body", *path),
            "msg": "must not contain a NUL character (\\u0000)",
            "input": None,
        }
        for path in _nul_paths(data)
    ]
    if errors:
        raise RequestValidationError(errors)


def _nul_paths(value: Any) -> list[tuple[str | int, ...]]:
    """Where NUL occurs in a parsed JSON value; iterative, so no nesting depth can overflow."""
    found: list[tuple[str | int, ...]] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                found.append(path)
        elif isinstance(item, list):
            stack.extend((child, (*path, i)) for i, child in enumerate(item))
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    found.append((*path, key.replace("\x00", "\\u0000")))
                stack.append((child, (*path, key)))
    return sorted(found, key=str)
