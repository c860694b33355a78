"""Bulk export (seed 003): what one export job reads, how its request reads back, and the
rules on objects, keys and cursors. Pure: no I/O.

An export job is a run of kind ``export``: the keyset slice of one object after a cursor,
at most ``limit`` objects in key order, written to one file.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from egress.domain.catalog import ColumnInfo
from egress.domain.data_tables import ROW_ID_COLUMN
from egress.domain.errors import Invalid
from egress.domain.paging import KeysetCursor
from egress.domain.spec import ExecutionSpec
from egress.domain.status import RunStatus
from egress.domain.types import parse_list

REQUEST_PREFIX = "export-"
# A seed-002 extraction run's request, polled through the same request store.
EXTRACTION_REQUEST_PREFIX = "extraction-"
TEMPLATE_PREFIX = "t-"  # a template is addressed by its id: names repeat across connections
DEFAULT_EXPORT_JOB_LIMIT = 100_000
# A fileUrl lives this long after its job completed (the retention task deletes the file then).
DEFAULT_EXPORT_URL_TTL_S = 7 * 24 * 3600
EXPORT_FORMATS = ("jsonl", "csv", "parquet")
EXPORT_FOLDER = "exports"
# What a data table without a primary key is ordered by (sinks.data_table.HIDDEN_ID).
ROW_ID = ROW_ID_COLUMN
DATA_TABLE = "dataTable"
TEMPLATE = "template"
# The connection type of a data table's export: its rows are in the warehouse database.
WAREHOUSE = "warehouse"
# How often the retention task looks for export files past their fileUrl's expiry.
RETENTION_EVERY_S = 300.0


class RequestStatus(StrEnum):
    """The seed's statuses."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"


def request_status(status: RunStatus, attempt: int) -> RequestStatus:
    """A run's status as the seed names it. A PENDING run on its second attempt or later is
    waiting for a retry after a failed attempt: to the client it is still in progress."""
    if status is RunStatus.PENDING:
        return RequestStatus.IN_PROGRESS if attempt > 1 else RequestStatus.PENDING
    if status is RunStatus.ON_HOLD:
        return RequestStatus.PENDING
    if status is RunStatus.IN_PROGRESS:
        return RequestStatus.IN_PROGRESS
    if status in (RunStatus.COMPLETED, RunStatus.COMPLETED_NO_DATA):
        return RequestStatus.COMPLETED
    return RequestStatus.FAILED


STATUS_FILTER = {s.value: s for s in RequestStatus}


def new_request_id(prefix: str = REQUEST_PREFIX) -> str:
    return f"{prefix}{uuid.uuid4()}"


@dataclass(frozen=True)
class ExportSpec:
    """One export job: ``execution`` says what is read and how it is written (a configuration
    made for the request), ``key`` the order, ``after`` where the previous job ended."""

    object: str  # as addressed in the path: a data table's name or ``t-<templateId>``
    kind: str  # DATA_TABLE | TEMPLATE
    key: list[str]
    after: list[Any] | None
    limit: int
    execution: ExecutionSpec

    def to_json(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "kind": self.kind,
            "key": self.key,
            "after": self.after,
            "limit": self.limit,
            "execution": self.execution.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportSpec:
        return cls(
            object=data["object"],
            kind=data["kind"],
            key=list(data["key"]),
            after=None if data.get("after") is None else list(data["after"]),
            limit=int(data["limit"]),
            execution=ExecutionSpec.from_json(data["execution"]),
        )


def cursor_scope(workspace_id: str, object_name: str) -> str:
    """What a cursor pages: one object of one workspace; another's cursor never verifies."""
    return f"{workspace_id}/{object_name}"


def encode_cursor(workspace_id: str, object_name: str, after: list[Any]) -> bytes:
    return KeysetCursor(cursor_scope(workspace_id, object_name), after).to_json()


def decode_cursor(raw: bytes, workspace_id: str, object_name: str, width: int) -> list[Any] | None:
    """The key values after which the job starts; None when the (authentic) cursor pages
    another workspace's object, another object or another key."""
    found = KeysetCursor.from_json(raw, cursor_scope(workspace_id, object_name), width)
    return None if found is None else found.after


def export_fields(
    fields: list[ColumnInfo], wanted: list[str] | None, data_table: bool
) -> list[str] | None:
    """The fields written (None: all); ``wanted`` must name known fields. A data table's
    hidden row id is none of them; a source's own column of that name is (it was refused as
    unknown before 2026-12-04)."""
    if wanted is None:
        return None
    known = {f.name for f in fields} - ({ROW_ID} if data_table else set())
    unknown = [w for w in wanted if w not in known]
    if unknown or not wanted:
        raise Invalid.at(
            ("body", "fields"),
            f"unknown field(s) {', '.join(map(repr, unknown))}" if unknown else "must not be empty",
        )
    if len(set(wanted)) != len(wanted):
        raise Invalid.at(("body", "fields"), "fields must not repeat")
    return wanted


def unenforced_key_reason(kind: str, primary_key: list[str], enforced: bool) -> str | None:
    """Why a template cannot be exported in key order, or None when it can."""
    if not primary_key:
        return "the template has no primary key to export it in order"
    if kind == "query":
        return (
            "a SQL template's key is only declared, not enforced by the source: paging over "
            "it could skip or repeat rows at a job boundary"
        )
    if not enforced:
        return (
            "the source does not enforce the template's key as unique (a PRIMARY KEY or a "
            "UNIQUE NOT NULL constraint; files and views have none): paging over it could "
            "skip or repeat rows at a job boundary"
        )
    return None


# Source types (``ColumnInfo.native``) whose order a job cannot resume after a cursor value.
UNPAGEABLE_NATIVE = {
    "enum": (
        "a MySQL ENUM, which sorts by its declared position but compares with the cursor's "
        "text as text: jobs after the first would repeat or skip rows"
    ),
    "set": (
        "a MySQL SET, which sorts by its members' bits but compares with the cursor's text "
        "as text: jobs after the first would repeat or skip rows"
    ),
    "money": (
        "PostgreSQL money, which does not compare with the cursor's decimal: jobs after the "
        "first would fail"
    ),
}
_UNPAGEABLE_ARRAY = (
    "an array, whose element type the cursor does not keep: jobs after the first would fail"
)


def unpageable_key_reason(fields: list[ColumnInfo], primary_key: list[str]) -> str | None:
    """Why a key cannot be paged (each job after the previous one's last key), or None."""
    by_name = {f.name: f for f in fields}
    for name in primary_key:
        f = by_name.get(name)
        what = None if f is None else UNPAGEABLE_NATIVE.get(f.native or "")
        if f is not None and what is None and parse_list(f.type) is not None:
            what = _UNPAGEABLE_ARRAY
        if what is not None:
            return f"its key column {name!r} is {what}"
    return None


def file_expiry(completed_at: datetime, ttl_s: int) -> datetime:
    return completed_at + timedelta(seconds=ttl_s)
