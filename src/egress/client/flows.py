"""The SDK's logic, written once for ``Client`` and ``AsyncClient``: each verb is a generator
(a *flow*) that yields what it needs done — send a request, stream a response into a sink,
sleep — and receives the result. A sync or async driver (``transport``) carries the steps out,
so paths, bodies, parsing, retries and the download protocol exist in one place only."""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter
from pydantic.alias_generators import to_camel

from egress.client.errors import RateLimited, RunFailed, ServerError, WaitTimeout, api_error
from egress.client.models import Execution

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass
class Send:
    """One request; its whole answer is read. ``bucket``: an absolute URL outside Egress (a
    presigned one), sent without the Egress token."""

    method: str
    url: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    bucket: bool = False


class Sink(Protocol):
    def start(self, response: httpx.Response) -> bool:
        """The answer's status and headers are in: True to have its body streamed to write()."""
        ...

    def write(self, chunk: bytes) -> None: ...

    def close(self) -> None: ...


@dataclass
class Stream:
    """A request whose answer's body is streamed into ``sink`` (closed by the driver)."""

    request: Send
    sink: Sink


@dataclass
class Sleep:
    seconds: float


Step = Send | Stream | Sleep
# A transport error while a step runs (a cut stream, a refused connection) is thrown into the
# flow at its ``yield``: the flow decides whether to resume or give up.
Flow = Generator[Step, Any, T]


def camel(values: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level keys as the API spells them (``template_id`` → ``templateId``); values, such as
    a connection's settings, are the caller's own and stay as they are."""
    return {to_camel(k) if "_" in k else k: v for k, v in values.items()}


def request(
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    headers: dict[str, str] | None = None,
) -> Flow[httpx.Response]:
    """One call of the API; an error answer raises its typed exception."""
    clean = {k: v for k, v in (params or {}).items() if v is not None}
    response: httpx.Response = yield Send(method, path, clean or None, json, headers or {})
    if response.status_code >= 400:
        raise api_error(response)
    return response


def parsed(kind: type[T], method: str, path: str, **kwargs: Any) -> Flow[T]:
    response = yield from request(method, path, **kwargs)
    return TypeAdapter(kind).validate_python(response.json())


def empty(method: str, path: str, **kwargs: Any) -> Flow[None]:
    yield from request(method, path, **kwargs)


def polled(
    kind: type[M], path: str, *, attempts: int = 5, params: Mapping[str, Any] | None = None
) -> Flow[M]:
    """A GET that waits out ``429`` and ``503`` as their ``Retry-After`` says, a few times."""
    for attempt in range(attempts):
        try:
            return (yield from parsed(kind, "GET", path, params=params))
        except (RateLimited, ServerError) as exc:
            if exc.status not in (429, 503) or attempt == attempts - 1:
                raise
            yield Sleep(exc.retry_after if exc.retry_after is not None else 1.0)
    raise AssertionError("attempts must be at least 1")


# The polls of ``wait``, each a long poll (``?wait=``) of this long: from short (a short run's
# progress is seen soon) to a few seconds for long ones. A change of status answers a long poll
# at once, however long it was asked to be.
FIRST_POLL_S = 0.2
MAX_POLL_S = 5.0


def wait(
    path: str,
    timeout: float | None,
    on_progress: Callable[[Execution], None] | None,
    clock: Callable[[], float],
) -> Flow[Execution]:
    """Long-poll the execution at ``path`` until its latest run is terminal (honouring
    ``Retry-After``); ``on_progress`` sees every answer. FAILED raises ``RunFailed``;
    COMPLETED, COMPLETED_NO_DATA and CANCELLED return the execution."""
    deadline = None if timeout is None else clock() + timeout
    delay, held = FIRST_POLL_S, 0.0  # held: the first poll answers at once
    seen: tuple[int, str] | None = None
    while True:
        asked = clock()
        params = {"wait": round(held, 3)} if held else None
        current = yield from polled(Execution, path, params=params)
        before, seen = seen, (len(current.runs), current.latest_status)
        if on_progress is not None:
            on_progress(current)
        if current.latest_status == "FAILED":
            raise RunFailed(current)
        if current.done:
            return current
        left = None if deadline is None else deadline - clock()
        if left is not None and left <= 0:
            raise WaitTimeout(current, timeout or 0.0)
        # Answered before its wait ended with nothing new (the server's waits were all taken,
        # or it changed and changed back): wait out the rest here, as a plain poll would.
        early = held - (clock() - asked)
        if held and early > 0 and seen == before:
            yield Sleep(early if left is None else min(early, left))
        held = delay if left is None else min(delay, left)
        delay = min(delay * 1.5, MAX_POLL_S)
