"""Drivers that carry out a flow's steps (``flows``): ``SyncDriver`` over ``httpx.Client``,
``AsyncDriver`` over ``httpx.AsyncClient``. Presigned bucket URLs go through a second client
that never had the Egress token, so the token cannot leak to the bucket."""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypeVar

import httpx

from egress.client.flows import Flow, Send, Sleep, Step, Stream

T = TypeVar("T")


def _advance(flow: Flow[T], value: Any, error: BaseException | None) -> tuple[Step | None, T]:
    """The flow's next step, or (None, its result) when it returned."""
    try:
        step = flow.throw(error) if error is not None else flow.send(value)
    except StopIteration as stop:
        return None, stop.value
    return step, None  # type: ignore[return-value]


def _build(http: httpx.Client | httpx.AsyncClient, step: Send) -> httpx.Request:
    return http.build_request(
        step.method, step.url, params=step.params, json=step.json, headers=step.headers
    )


def _wanted(step: Step, response: httpx.Response) -> bool:
    """Whether to read a body nobody streamed: yes for a plain request, and for an error's
    problem JSON; not for a file the sink declined (it could be large)."""
    return not isinstance(step, Stream) or response.status_code >= 400


class SyncDriver:
    def __init__(self, api: httpx.Client, bucket: httpx.Client) -> None:
        self.api, self.bucket = api, bucket

    def run(self, flow: Flow[T]) -> T:
        value: Any = None
        error: BaseException | None = None
        while True:
            step, result = _advance(flow, value, error)
            if step is None:
                return result
            value, error = None, None
            try:
                value = self._do(step)
            except httpx.TransportError as exc:
                error = exc

    def _do(self, step: Step) -> Any:
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        send = step.request if isinstance(step, Stream) else step
        http = self.bucket if send.bucket else self.api
        response = http.send(_build(http, send), stream=True)
        try:
            if isinstance(step, Stream) and step.sink.start(response):
                for chunk in response.iter_bytes():
                    step.sink.write(chunk)
            elif _wanted(step, response):
                response.read()
        finally:
            response.close()
            if isinstance(step, Stream):
                step.sink.close()
        return response


class AsyncDriver:
    def __init__(self, api: httpx.AsyncClient, bucket: httpx.AsyncClient) -> None:
        self.api, self.bucket = api, bucket

    async def run(self, flow: Flow[T]) -> T:
        value: Any = None
        error: BaseException | None = None
        while True:
            step, result = _advance(flow, value, error)
            if step is None:
                return result
            value, error = None, None
            try:
                value = await self._do(step)
            except httpx.TransportError as exc:
                error = exc

    async def _do(self, step: Step) -> Any:
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        send = step.request if isinstance(step, Stream) else step
        http = self.bucket if send.bucket else self.api
        response = await http.send(_build(http, send), stream=True)
        try:
            if isinstance(step, Stream) and step.sink.start(response):
                async for chunk in response.aiter_bytes():
                    step.sink.write(chunk)
            elif _wanted(step, response):
                await response.aread()
        finally:
            await response.aclose()
            if isinstance(step, Stream):
                step.sink.close()
        return response
