"""Data tables' rows, keyset-paged with cursors the server signs: a client cannot make one up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from egress.db.data_tables import DataTableRecord as DataTableRecord
from egress.db.data_tables import DataTableRepo
from egress.db.paging import Page
from egress.domain.catalog import ColumnInfo
from egress.domain.errors import BadRequest
from egress.domain.paging import BadKey, KeysetCursor, PageRequest, key_types, key_values
from egress.signing import BadSignature, SigningRing
from egress.sinks.data_table import HIDDEN_ID, Warehouse

# Mixed into the cursor's HMAC: no other signed value (token hash, URL) passes for a cursor.
ROWS_CURSOR = "data-table-rows"
_NOT_OURS = "is not a cursor this endpoint returned"
_OLD_KEY = (
    "was returned by an older release that did not keep this table's key exactly; "
    "page again from the first page"
)


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

    def _decode(
        self, t: DataTableRecord, cursor: str, types: list[str], order: list[str]
    ) -> list[Any]:
        """The cursor's key values, typed by the key columns' logical ``types``."""
        try:
            raw = self._signing.signer(ROWS_CURSOR).verify(cursor)
        except (BadSignature, ValueError) as exc:
            raise BadRequest.at(("query", "cursor"), _NOT_OURS) from exc
        # Signed by us, yet for another table (or by an older release): still not this page's.
        found = KeysetCursor.from_json(raw, t.id, len(order))
        if found is None:
            raise BadRequest.at(("query", "cursor"), _NOT_OURS)
        try:
            return key_values(found.after, types)
        except BadKey:  # an older release's text of a binary key (str(bytes)): not exact
            raise BadRequest.at(("query", "cursor"), _OLD_KEY) from None

    def rows_page(
        self, workspace_id: str, table_id: str, limit: int, cursor: str | None
    ) -> RowsPage:
        t = self._data_tables.get(workspace_id, table_id)
        order = t.primary_key or [HIDDEN_ID]
        types = key_types([*t.fields, ColumnInfo(HIDDEN_ID, "int64", False)], order)
        after = self._decode(t, cursor, types, order) if cursor else None
        rows = self._warehouse.rows(t.physical_name, order, types, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        following = KeysetCursor(t.id, [rows[-1][k] for k in order]) if more else None
        shown = [{k: v for k, v in row.items() if k != HIDDEN_ID} for row in rows]
        return RowsPage(shown, self._encode(following) if following else None)
