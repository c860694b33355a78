"""Data tables' rows, keyset-paged with cursors the server signs: a client cannot make one up."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from egress.container import Container
from egress.domain.errors import BadRequest
from egress.signing import BadSignature
from egress.sinks.data_table import HIDDEN_ID

# Mixed into the cursor's HMAC: no other signed value (token hash, URL) passes for a cursor.
ROWS_CURSOR = "data-table-rows"
_NOT_OURS = "is not a cursor this endpoint returned"


@dataclass(frozen=True)
class RowsPage:
    rows: list[dict[str, Any]]  # with HIDDEN_ID where the table has no primary key
    next_cursor: str | None


def _encode(c: Container, table_id: str, after: list[Any]) -> str:
    payload = json.dumps({"table": table_id, "after": after}, default=str)
    return c.signing.signer(ROWS_CURSOR).sign(payload.encode())


def _decode(c: Container, table_id: str, cursor: str, width: int) -> list[Any]:
    try:
        payload = json.loads(c.signing.signer(ROWS_CURSOR).verify(cursor))
    except (BadSignature, ValueError) as exc:
        raise BadRequest.at(("query", "cursor"), _NOT_OURS) from exc
    # Signed by us, yet for another table (or by an older release): still not this page's.
    if not isinstance(payload, dict) or payload.get("table") != table_id:
        raise BadRequest.at(("query", "cursor"), _NOT_OURS)
    after = payload.get("after")
    if not isinstance(after, list) or len(after) != width:
        raise BadRequest.at(("query", "cursor"), _NOT_OURS)
    return after


def rows_page(
    c: Container, workspace_id: str, table_id: str, limit: int, cursor: str | None
) -> RowsPage:
    t = c.data_tables.get(workspace_id, table_id)
    order = t.primary_key or [HIDDEN_ID]
    after = _decode(c, t.id, cursor, len(order)) if cursor else None
    rows = c.warehouse.rows(t.physical_name, order, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return RowsPage(rows, _encode(c, t.id, [rows[-1][k] for k in order]) if more else None)
