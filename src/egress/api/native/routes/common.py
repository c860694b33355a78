"""Pieces every route shares: paging parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from egress.domain.paging import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, PageRequest


def page_request(
    page: Annotated[int, Query(ge=0, le=MAX_PAGE, description="0-based page number")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = DEFAULT_LIMIT,
) -> PageRequest:
    return PageRequest(page=page, limit=limit)
