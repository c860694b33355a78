"""Data tables' rows, keyset-paged with cursors the server signs: a client cannot make one up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from egress.db.data_tables import DataTableRecord as DataTableRecord
from egress.db.data_tables import DataTableRepo
from egress.db.paging import Page
from egress.domain.errors import BadRequest
from egress.domain.paging import KeysetCursor, PageRequest
from egress.signing import BadSignature, SigningRing
from egress.sinks.data_table import HIDDEN_ID, Warehouse

# Mixed into the cursor's HMAC: no other signed value (token hash, URL) passes for a cursor.
ROWS_CURSOR = "data-table-rows"
_NOT_OURS = "is not a cursor this endpoint returned"


@dataclass(frozen=True)
class RowsPage:
    rows: list[dict[str, Any]]  # without the hidden key of a table with no primary key
    next_cursor: str | None


@dataclass(frozen=True)
class DataTableDetails:
    table: DataTableRecord
    configurations: list[dict[str, str]]  # the configurations that load it


class DataTableService:
    """The managed tables extractions load into, and their rows page by page."""

    def __init__(
        self, data_tables: DataTableRepo, warehouse: Warehouse, signing: SigningRing
    ) -> None:
        self._data_tables = data_tables
        self._warehouse = warehouse
        self._signing = signing

    def list_page(self, workspace_id: str, page: PageRequest) -> Page[DataTableRecord]:
        return self._data_tables.list_page(workspace_id, page)

    def get(self, workspace_id: str, table_id: str) -> DataTableDetails:
        table = self._data_tables.get(workspace_id, table_id)
        loading = self._data_tables.loading_configurations(workspace_id, table.name)
        return DataTableDetails(table, loading)

    def _encode(self, cursor: KeysetCursor) -> str:
        return self._signing.signer(ROWS_CURSOR).sign(cursor.to_json())

    def _decode(self, table_id: str, cursor: str, width: int) -> list[Any]:
        try:
            raw = self._signing.signer(ROWS_CURSOR).verify(cursor)
        except (BadSignature, ValueError) as exc:
            raise BadRequest.at(("query", "cursor"), _NOT_OURS) from exc
        # Signed by us, yet for another table (or by an older release): still not this page's.
        found = KeysetCursor.from_json(raw, table_id, width)
        if found is None:
            raise BadRequest.at(("query", "cursor"), _NOT_OURS)
        return found.after

    def rows_page(
        self, workspace_id: str, table_id: str, limit: int, cursor: str | None
    ) -> RowsPage:
        t = self._data_tables.get(workspace_id, table_id)
        order = t.primary_key or [HIDDEN_ID]
        after = self._decode(t.id, cursor, len(order)) if cursor else None
        rows = self._warehouse.rows(t.physical_name, order, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        following = KeysetCursor(t.id, [rows[-1][k] for k in order]) if more else None
        shown = [{k: v for k, v in row.items() if k != HIDDEN_ID} for row in rows]
        return RowsPage(shown, self._encode(following) if following else None)
