"""Page arithmetic shared by every list endpoint."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_LIMIT = 50
# Large enough for scripts to page quickly, small enough that one page is cheap to serve.
MAX_LIMIT = 1000
# Keeps page * limit inside a 64-bit OFFSET (a bigger page number is a 422, not an overflow).
MAX_PAGE = 10_000_000


@dataclass(frozen=True)
class PageRequest:
    page: int = 0
    limit: int = DEFAULT_LIMIT

    @property
    def offset(self) -> int:
        return self.page * self.limit


def total_pages(total: int, limit: int) -> int:
    return (total + limit - 1) // limit if limit else 0
