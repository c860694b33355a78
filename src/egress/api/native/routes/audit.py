"""The audit trail, for admins: who did what, when, from where."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from egress.api.native.presenters import audit_event_out
from egress.api.native.routes.common import page_request
from egress.api.native.schemas import AuditEventOut, ListEnvelope
from egress.api.wiring import Admin, ServicesDep
from egress.domain.audit import ACTIONS, AuditFilter
from egress.domain.paging import PageRequest

router = APIRouter(prefix="/api/v1/audit-events", tags=["audit"])


@router.get("", response_model=ListEnvelope[AuditEventOut])
def list_audit_events(
    s: ServicesDep,
    p: Admin,
    page: Annotated[PageRequest, Depends(page_request)],
    actor: Annotated[str | None, Query(max_length=64, description="the actor's id")] = None,
    action: Annotated[
        str | None,
        # The service names the actions when refusing one; the document lists them too.
        Query(
            max_length=64,
            description="e.g. file.download",
            json_schema_extra={"enum": list(ACTIONS)},
        ),
    ] = None,
    start: Annotated[datetime | None, Query(alias="from", description="at or after")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="before")] = None,
) -> ListEnvelope[AuditEventOut]:
    """Newest first; admins only (editors 403)."""
    result = s.audit.list_page(p, AuditFilter(actor, action, start, end), page)
    items = [audit_event_out(e) for e in result.items]
    return ListEnvelope.of(items, page.page, page.limit, result.total)
