"""The audit trail, for admins: who did what, when, from where."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BeforeValidator

from egress.api.native.presenters import audit_event_out
from egress.api.native.routes.common import page_request
from egress.api.native.schemas import AuditEventOut, ListEnvelope
from egress.api.wiring import Admin, ServicesDep
from egress.domain.audit import ACTIONS, AuditFilter
from egress.domain.paging import PageRequest

router = APIRouter(prefix="/api/v1/audit-events", tags=["audit"])


def _not_a_number(value: object) -> object:
    """pydantic would read a number as Unix time; the document promises ISO 8601."""
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+(\.\d*)?\s*", value):
        raise ValueError("must be an ISO 8601 date-time")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_not_a_number)]


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
    start: Annotated[IsoDatetime | None, Query(alias="from", description="at or after")] = None,
    end: Annotated[IsoDatetime | None, Query(alias="to", description="before")] = None,
) -> ListEnvelope[AuditEventOut]:
    """Newest first; admins only (editors 403)."""
    result = s.audit.list_page(p, AuditFilter(actor, action, start, end), page)
    items = [audit_event_out(e) for e in result.items]
    return ListEnvelope.of(items, page.page, page.limit, result.total)
