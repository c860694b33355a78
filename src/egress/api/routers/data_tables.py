"""/api/v1/data-tables: the managed tables extractions load into, with keyset-paged rows."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from egress.api.auth import CurrentPrincipal, Services
from egress.api.routers.common import page_request
from egress.api.schemas import (
    DataTableOut,
    DataTableSummaryOut,
    FieldOut,
    ListEnvelope,
    RowsOut,
)
from egress.domain.paging import MAX_LIMIT, PageRequest
from egress.services import data_tables
from egress.sinks.data_table import HIDDEN_ID

router = APIRouter(prefix="/api/v1/data-tables", tags=["data tables"])


@router.get("", response_model=ListEnvelope[DataTableSummaryOut])
def list_data_tables(
    c: Services, p: CurrentPrincipal, page: Annotated[PageRequest, Depends(page_request)]
) -> ListEnvelope[DataTableSummaryOut]:
    result = c.data_tables.list_page(p.workspace_id, page)
    items = [
        DataTableSummaryOut(id=t.id, name=t.name, row_count=t.row_count, updated_at=t.updated_at)
        for t in result.items
    ]
    return ListEnvelope.of(items, page.page, page.limit, result.total)


@router.get("/{table_id}", response_model=DataTableOut)
def get_data_table(table_id: str, c: Services, p: CurrentPrincipal) -> DataTableOut:
    t = c.data_tables.get(p.workspace_id, table_id)
    return DataTableOut(
        id=t.id,
        name=t.name,
        row_count=t.row_count,
        updated_at=t.updated_at,
        created_at=t.created_at,
        fields=[FieldOut(name=f.name, type=f.type, nullable=f.nullable) for f in t.fields],
        mode=t.mode,
        primary_key=t.primary_key,
        template_id=t.template_id,
        configurations=c.data_tables.loading_configurations(p.workspace_id, t.name),
    )


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # exact, as in JSONL exports
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


@router.get("/{table_id}/rows", response_model=RowsOut)
def list_rows(
    table_id: str,
    c: Services,
    p: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> RowsOut:
    page = data_tables.rows_page(c, p.workspace_id, table_id, limit, cursor)
    data = [{k: _plain(v) for k, v in row.items() if k != HIDDEN_ID} for row in page.rows]
    return RowsOut(data=data, next_cursor=page.next_cursor)
