"""Pieces every router shares: paging parameters, the pool of interactive source calls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Query

from egress.container import Container
from egress.domain.paging import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, PageRequest

T = TypeVar("T")


def page_request(
    page: Annotated[int, Query(ge=0, le=MAX_PAGE, description="0-based page number")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = DEFAULT_LIMIT,
) -> PageRequest:
    return PageRequest(page=page, limit=limit)


async def in_source_pool(c: Container, call: Callable[[], T]) -> T:
    """Run a request's source call (with its metadata reads) in the bounded pool of
    interactive source calls: 429 when full, and the API's own threads never wait on it."""
    return await asyncio.wrap_future(c.source_pool.submit(call))
