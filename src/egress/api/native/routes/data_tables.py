"""/api/v1/data-tables: the managed tables extractions load into, with keyset-paged rows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from egress.api.native.presenters import data_table_out, data_table_summary_out, plain
from egress.api.native.routes.common import page_request
from egress.api.native.schemas import (
    DataTableOut,
    DataTableSummaryOut,
    ListEnvelope,
    RowsOut,
)
from egress.api.wiring import ServicesDep, Viewer
from egress.domain.paging import MAX_LIMIT, PageRequest

router = APIRouter(prefix="/api/v1/data-tables", tags=["data tables"])


@router.get("", response_model=ListEnvelope[DataTableSummaryOut])
def list_data_tables(
    s: ServicesDep, p: Viewer, page: Annotated[PageRequest, Depends(page_request)]
) -> ListEnvelope[DataTableSummaryOut]:
    result = s.data_tables.list_page(p.workspace_id, page)
    items = [data_table_summary_out(t) for t in result.items]
    return ListEnvelope.of(items, page.page, page.limit, result.total)


@router.get("/{table_id}", response_model=DataTableOut)
def get_data_table(table_id: str, s: ServicesDep, p: Viewer) -> DataTableOut:
    return data_table_out(s.data_tables.get(p.workspace_id, table_id))


@router.get(
    "/{table_id}/rows",
    response_model=RowsOut,
    responses={400: {"description": "the cursor was not issued by this server"}},
)
def list_rows(
    table_id: str,
    s: ServicesDep,
    p: Viewer,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> RowsOut:
    page = s.data_tables.rows_page(p.workspace_id, table_id, limit, cursor)
    data = [{k: plain(v) for k, v in row.items()} for row in page.rows]
    return RowsOut(data=data, next_cursor=page.next_cursor)
