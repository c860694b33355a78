"""Request hygiene applied to every route: a body size limit enforced before anything parses the
body, and no value in a JSON body that cannot be stored and read back: a NUL byte or a lone
surrogate in a string, a number that is not finite."""

from __future__ import annotations

import math
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


async def reject_unstorable(request: Request) -> None:
    """A JSON body value that cannot be stored as it was sent is 422 naming where:

    - a NUL byte in a string or key: drivers and C libraries cut strings at NUL, so
      ``"127.0.0.1\\u0000x"`` would silently mean 127.0.0.1;
    - a lone surrogate (``"\\ud800"``) in a string or key: no UTF-8 holds it, so storing it
      failed (500, with the execution already stored and failing every later read of it);
    - a number that is not finite: Python's JSON reads ``NaN``, ``Infinity`` and ``1e400``
      (as infinity), which no strict JSON holds: on SQLite metadata such a trigger's options
      made the run queue's claim fail for every workspace (``malformed JSON``), on PostgreSQL
      the trigger answered 500.

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
        {"type": "value_error", "loc": ("body", *path), "msg": msg, "input": None}
        for path, msg in unstorable_values(data)
    ]
    if errors:
        raise RequestValidationError(errors)


_NUL = "must not contain a NUL character (\\u0000)"
_SURROGATE = "must not contain a lone surrogate (\\ud800-\\udfff): it is no Unicode character"
_NOT_FINITE = "must be a finite number: JSON has no NaN or Infinity (1e400 is beyond a double)"


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return _NUL
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE
    return None


def _shown_key(key: str) -> str:
    """A key as a problem's location names it: NUL and surrogates escaped, so the answer is
    itself valid JSON."""
    return key.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\u0000")


def unstorable_values(value: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Where a parsed JSON value holds what cannot be stored, and why; iterative, so no
    nesting depth can overflow."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            problem_text = _text_problem(item)
            if problem_text is not None:
                found.append((path, problem_text))
        elif isinstance(item, float):
            if not math.isfinite(item):
                found.append((path, _NOT_FINITE))
        elif isinstance(item, list):
            stack.extend((child, (*path, i)) for i, child in enumerate(item))
        elif isinstance(item, dict):
            for key, child in item.items():
                key_problem = _text_problem(key)
                if key_problem is not None:
                    found.append(((*path, _shown_key(key)), key_problem))
                stack.append((child, (*path, key if key_problem is None else _shown_key(key))))
    return sorted(found, key=lambda f: str(f[0]))
