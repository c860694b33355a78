"""Page arithmetic shared by every list endpoint, and the cursor of keyset-paged lists."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class KeysetCursor:
    """Where a keyset page ended: what it pages (``scope``, e.g. a table id) and the last
    row's key values. Its JSON is signed by whoever hands it out; a face never parses it."""

    scope: str
    after: list[Any]

    def to_json(self) -> bytes:
        return json.dumps({"table": self.scope, "after": self.after}, default=str).encode()

    @classmethod
    def from_json(cls, raw: bytes, scope: str, width: int) -> KeysetCursor | None:
        """The cursor, or None unless it pages ``scope`` by ``width`` key values."""
        try:
            payload = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(payload, dict) or payload.get("table") != scope:
            return None
        after = payload.get("after")
        if not isinstance(after, list) or len(after) != width:
            return None
        return cls(scope, after)
