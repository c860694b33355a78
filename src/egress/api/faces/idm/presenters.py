"""Seed 003's response shapes."""

from __future__ import annotations

from typing import Any

from egress.domain.export import RequestStatus
from egress.domain.schedules import utc_iso
from egress.services.exports import ExportObject, RequestView


def request_out(v: RequestView) -> dict[str, Any]:
    out: dict[str, Any] = {"requestId": v.request_id, "status": v.status.value}
    if v.status is RequestStatus.PENDING and v.hold_reason is not None:
        out["holdReason"] = v.hold_reason
    elif v.status is RequestStatus.IN_PROGRESS:
        out["progress"] = {"processed": v.processed or 0}
    elif v.status is RequestStatus.COMPLETED:
        out["result"] = {"total": v.total, "fileUrl": v.file_url, "nextCursor": v.next_cursor}
    elif v.status is RequestStatus.FAILED:
        out["error"] = {"message": v.error, "retryable": v.retryable}
    return out


def request_summary_out(v: RequestView) -> dict[str, Any]:
    """A list entry: the request as GET shows it, with what it exported and when."""
    return {**request_out(v), "object": v.object, "createdAt": utc_iso(v.created_at)}


def object_out(o: ExportObject) -> dict[str, Any]:
    return {
        "name": o.name,
        "kind": o.kind,
        "title": o.title,
        "key": o.key,
        "approximateCount": o.approximate_count,
    }
