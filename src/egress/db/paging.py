"""One way to page a query, shared by every repository list."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from egress.domain.paging import PageRequest

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    request: PageRequest


def fetch_page(
    conn: Connection, query: sa.Select[tuple[object, ...]], page: PageRequest
) -> tuple[Sequence[Row[tuple[object, ...]]], int]:
    """Rows of one page of ``query`` (already ordered) and the total row count."""
    total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(query.limit(page.limit).offset(page.offset)).all()
    return rows, int(total)


# How many items ``every_item`` reads a page.
_LIST_BATCH = 1000


def every_item(fetch: Callable[[PageRequest], Page[T]]) -> Iterator[T]:
    """Every item of a paged repository list, a page at a time."""
    page = 0
    while True:
        got = fetch(PageRequest(page, _LIST_BATCH))
        yield from got.items
        if (page + 1) * _LIST_BATCH >= got.total:
            return
        page += 1
