"""Bulk export (seed 003): the exportable objects, export requests (one job each, a run of kind
``export``), reading them back in the seed's terms, their signed file links, and the retention
of their files."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from egress.db.connections import ConnectionRepo
from egress.db.data_tables import DataTableRecord, DataTableRepo
from egress.db.executions import FileRecord
from egress.db.paging import Page, every_item
from egress.db.requests import OwnerBusy, RequestRecord, RequestRepo
from egress.db.templates import TemplateRecord, TemplateRepo
from egress.domain import audit as a
from egress.domain.audit import AuditObject
from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.clock import Clock
from egress.domain.errors import BadRequest, Busy, Invalid, NotFound
from egress.domain.export import (
    DATA_TABLE,
    EXPORT_FOLDER,
    ROW_ID,
    TEMPLATE,
    TEMPLATE_PREFIX,
    WAREHOUSE,
    ExportSpec,
    RequestStatus,
    decode_cursor,
    encode_cursor,
    export_fields,
    file_expiry,
    new_request_id,
    request_status,
    unenforced_key_reason,
    unpageable_key_reason,
)
from egress.domain.identity import Principal, own_workspace
from egress.domain.paging import BadKey, PageRequest, key_json, key_types, key_values
from egress.domain.spec import (
    POSTGRES_DIALECT,
    ConfigurationSnapshot,
    ConnectionRef,
    ExecutionSpec,
    TemplateSnapshot,
    postgres_dialect_problem,
)
from egress.domain.status import RunKind, RunStatus
from egress.services.audit import AuditService
from egress.services.links import EXPORT_FILE, LinkTarget, SignedLinks
from egress.signing import BadSignature, SigningRing
from egress.storage import STORAGE_ERRORS, Storage
from egress.worker.wakeup import Wakeup

log = logging.getLogger(__name__)

CURSOR_PURPOSE = "export-cursor"
# Sources whose catalog reads a discovered template's key from its PRIMARY KEY constraint.
ENFORCING_SOURCES = frozenset({"postgresql", "mysql", "sqlite"})
# A client told to come back: about when a small job has moved on.
RETRY_AFTER_S = 5
_BAD_CURSOR = "is not a nextCursor this server returned for this object"
_BAD_KEY = (
    "was returned by an older release that did not keep this object's key exactly; "
    "start the chain again without a cursor"
)
# The retention task deletes at most this many files a round (the next round goes on).
RETENTION_BATCH = 500


@dataclass(frozen=True)
class ExportObject:
    name: str  # as used in the path
    kind: str  # DATA_TABLE | TEMPLATE
    key: list[str]
    approximate_count: int | None  # None: not known without asking the source
    title: str  # the data table's or template's own name


@dataclass(frozen=True)
class RequestView:
    """A request as the seed reads it."""

    request_id: str
    status: RequestStatus
    object: str | None
    created_at: datetime
    hold_reason: str | None = None
    processed: int | None = None
    total: int | None = None
    file_url: str | None = None
    next_cursor: str | None = None
    error: str | None = None
    retryable: bool = False
    execution_id: str | None = None  # an extraction's (seed 002); None for an export job


def owner_of(principal: Principal) -> str:
    """The user a rule counts (a personal token counts as its creator)."""
    actor = principal.actor
    return f"{actor.type}:{actor.id}"


class ExportService:
    def __init__(
        self,
        requests: RequestRepo,
        templates: TemplateRepo,
        connections: ConnectionRepo,
        data_tables: DataTableRepo,
        storage: Storage,
        signing: SigningRing,
        links: SignedLinks,
        wakeup: Wakeup,
        clock: Clock,
        job_limit: int,
        url_ttl_s: int,
        public_url: str | None,
        audit: AuditService,
        warehouse_type: str,
    ) -> None:
        self._audit = audit
        self._warehouse_type = warehouse_type  # the database its data tables are read from
        self._requests = requests
        self._templates = templates
        self._connections = connections
        self._data_tables = data_tables
        self._storage = storage
        self._cursors = signing.signer(CURSOR_PURPOSE)
        self._links = links
        self._wakeup = wakeup
        self._clock = clock
        self._limit = job_limit
        self._ttl_s = url_ttl_s
        self._public_url = public_url

    # ----------------------------------------------------------------- objects
    def objects(self, principal: Principal, firm_id: str) -> list[ExportObject]:
        workspace_id = _firm(principal, firm_id)
        found = [
            ExportObject(t.name, DATA_TABLE, t.primary_key or [ROW_ID], t.row_count, t.name)
            for t in every_item(lambda p: self._data_tables.list_page(workspace_id, p))
        ]
        types = {
            c.id: c.type for c in every_item(lambda p: self._connections.list_page(workspace_id, p))
        }
        for t in every_item(lambda p: self._templates.list_page(workspace_id, None, p)):
            if _template_reason(t, types.get(t.connection_id, "")) is None:
                name = f"{TEMPLATE_PREFIX}{t.id}"
                found.append(ExportObject(name, TEMPLATE, t.primary_key, None, t.name))
        return found

    # ----------------------------------------------------------------- export
    def export(
        self,
        principal: Principal,
        firm_id: str,
        object_name: str,
        cursor: str | None,
        fmt: str,
        fields: list[str] | None,
        csv_dialect: str | None = None,
    ) -> RequestView:
        """Queue one export job; Busy naming the user's active request instead."""
        workspace_id = _firm(principal, firm_id)
        request_id = new_request_id()
        template, connection, kind = self._object(workspace_id, object_name)
        after = self._after(workspace_id, object_name, cursor, template)
        chosen = export_fields(template.fields, fields, kind == DATA_TABLE)
        if csv_dialect == POSTGRES_DIALECT:
            self._check_postgres_dialect(connection, kind, fmt)
        if chosen is None and kind == DATA_TABLE:
            chosen = [f.name for f in template.fields if f.name != ROW_ID]
        spec = ExportSpec(
            object=object_name,
            kind=kind,
            key=template.primary_key,
            after=after,
            limit=self._limit,
            execution=ExecutionSpec(
                configuration=ConfigurationSnapshot(
                    id=request_id,
                    name=object_name,
                    version=1,
                    fields=chosen,
                    format=fmt,
                    compression="none",
                    destination={"type": "storage", "path": EXPORT_FOLDER},
                    file_name_pattern=None,
                    split_by=None,
                    csv_dialect=csv_dialect,
                ),
                template=template,
                connection=connection,
            ),
        )
        try:
            detail = {"object": object_name, "format": fmt}
            record = self._requests.create_export(
                workspace_id,
                request_id,
                owner_of(principal),
                spec,
                self._clock(),
                self._audit.hook(
                    a.EXPORT_CREATE,
                    "export",
                    by=principal,
                    workspace_id=workspace_id,
                    detail=detail,
                ),
            )
        except OwnerBusy as busy:
            raise Busy(
                f"you already have an export job Pending or InProgress: {busy.request_id}; "
                "one export job per user at a time, poll it and try again when it is done",
                retry_after_s=RETRY_AFTER_S,
            ) from None
        self._wakeup.notify()
        return self._view(record, None, principal)

    def _object(self, workspace_id: str, name: str) -> tuple[TemplateSnapshot, ConnectionRef, str]:
        """What the object reads, as a template snapshot, and through which connection."""
        missing = NotFound(f"object {name!r} not found in this firm")
        if name.startswith(TEMPLATE_PREFIX):
            try:
                t = self._templates.get(workspace_id, name.removeprefix(TEMPLATE_PREFIX))
            except NotFound:
                raise missing from None
            connection = self._connections.get(workspace_id, t.connection_id)
            reason = _template_reason(t, connection.type)
            if reason is not None:
                raise Invalid.at(("path", "objects"), f"{name} cannot be exported: {reason}")
            return t.snapshot(), ConnectionRef(connection.id, connection.type), TEMPLATE
        table = self._data_tables.find(workspace_id, name)
        if table is None:
            raise missing
        return _table_snapshot(table), ConnectionRef("", WAREHOUSE), DATA_TABLE

    def _check_postgres_dialect(self, connection: ConnectionRef, kind: str, fmt: str) -> None:
        """csvDialect "postgres" under the configurations' rule: a CSV file of a PostgreSQL
        source (a data table's is the warehouse)."""
        source_type = self._warehouse_type if kind == DATA_TABLE else connection.type
        values = {"format": fmt, "destination": {"type": "storage"}, "split_by": None}
        what = "data table" if kind == DATA_TABLE else "template"
        problem = postgres_dialect_problem(source_type, values, what)
        if problem:
            raise Invalid.at(("body", "csv_dialect"), problem)

    def _after(
        self, workspace_id: str, object_name: str, cursor: str | None, template: TemplateSnapshot
    ) -> list[Any] | None:
        """The cursor's key values as the job keeps them (``key_json``): read by the key
        columns' types first, so one that does not read as them is refused here, not
        misread by the job."""
        if cursor is None:
            return None
        try:
            raw = self._cursors.verify(cursor)
        except (BadSignature, ValueError) as exc:
            raise BadRequest.at(("body", "cursor"), _BAD_CURSOR) from exc
        after = decode_cursor(raw, workspace_id, object_name, len(template.primary_key))
        if after is None:  # ours, but for another workspace, object or key
            raise BadRequest.at(("body", "cursor"), _BAD_CURSOR)
        try:
            typed = key_values(after, key_types(template.fields, template.primary_key))
        except BadKey:  # an older release's text of a binary key (str(bytes)): not exact
            raise BadRequest.at(("body", "cursor"), _BAD_KEY) from None
        return [key_json(v) for v in typed]

    # ---------------------------------------------------------------- requests
    # A request is its user's, as the seed's "1 active job per user" and the list count it:
    # another user's (an admin's too: the runs API is where a workspace's runs are overseen)
    # reads as unknown, never revealing it exists.
    def get(self, principal: Principal, request_id: str, base_url: str) -> RequestView:
        record = self._requests.get(principal.workspace_id, request_id, owner_of(principal))
        return self._view(record, base_url, principal)

    def list_page(
        self,
        principal: Principal,
        status: RequestStatus | None,
        page: PageRequest,
        base_url: str,
    ) -> Page[RequestView]:
        found = self._requests.list_page(principal.workspace_id, owner_of(principal), status, page)
        return Page([self._view(r, base_url, principal) for r in found.items], found.total, page)

    def cancel(self, principal: Principal, request_id: str) -> RequestView:
        ws = principal.workspace_id
        hook = self._audit.hook(a.EXPORT_CANCEL, "export", by=principal, workspace_id=ws)
        record = self._requests.cancel(ws, request_id, owner_of(principal), self._clock(), hook)
        self._wakeup.notify()
        return self._view(record, None, principal)

    def _view(self, r: RequestRecord, base_url: str | None, reader: Principal) -> RequestView:
        run = r.run
        status = request_status(run.status, run.attempt)
        view = RequestView(r.id, status, r.object, r.created_at, execution_id=r.execution_id)
        if status is RequestStatus.PENDING:
            hold = "waiting for another job to end" if run.status is RunStatus.ON_HOLD else None
            return replace(view, hold_reason=hold)
        if status is RequestStatus.IN_PROGRESS:
            return replace(view, processed=run.processed or 0)
        if status is RequestStatus.FAILED:
            cancelled = run.status is RunStatus.CANCELLED
            message = "cancelled" if cancelled else run.error_message or "failed"
            return replace(view, error=message, retryable=bool(run.retryable))
        after = (r.result or {}).get("after")
        cursor = None
        if after is not None and r.object is not None:
            cursor = self._cursors.sign(encode_cursor(r.workspace_id, r.object, after))
        url = None
        # An extraction has a file to link only when it wrote one (not a data-table load).
        has_file = r.kind is RunKind.EXPORT or len(run.files) == 1
        if base_url is not None and run.completed_at is not None and has_file:
            # Issued to who reads it (the download's audit actor), expiring with the file: the
            # same URL for every read of theirs.
            target = LinkTarget(EXPORT_FILE, r.workspace_id, (r.id,), reader.actor)
            expires = file_expiry(run.completed_at, self._ttl_s)
            url = self._links.issue(target, self._public_url or base_url, expires).url
        return replace(view, total=run.record_count or 0, file_url=url, next_cursor=cursor)

    # ------------------------------------------------------------------ files
    def file(self, token: str, source_address: str | None = None) -> FileRecord:
        """The file a signed link opens (no bearer token: the link is the credential), on
        the audit trail as a download by whom the link was issued to."""
        link = self._links.open(EXPORT_FILE, token)
        record = self._requests.get(link.workspace_id, link.ids[0])
        if not record.run.files:
            raise NotFound("this export's file is gone")
        f = record.run.files[0]
        self._audit.record(
            a.FILE_DOWNLOAD,
            AuditObject("export", record.id),
            workspace_id=link.workspace_id,
            actor=link.issued_to,
            source_address=source_address,
            detail={"file": f.file_name, "via": a.SIGNED_LINK},
        )
        return f

    def delete_expired(self) -> int:
        """One round of the retention task: delete export files whose links have expired."""
        before = self._clock() - timedelta(seconds=self._ttl_s)
        deleted = 0
        for f in self._requests.expired_files(before, RETENTION_BATCH):
            try:
                self._storage.delete(f.storage_key)
            except STORAGE_ERRORS as exc:  # the next round tries again
                log.warning("deleting expired export file %s failed: %s", f.storage_key, exc)
                continue
            self._requests.forget_file(f.storage_key)
            deleted += 1
        return deleted


def _firm(principal: Principal, firm_id: str) -> str:
    return own_workspace(principal, firm_id, "firm")


def _template_reason(t: TemplateRecord, connection_type: str) -> str | None:
    if t.query is not None:
        return unenforced_key_reason("query", t.primary_key, False)
    # A discovered template's key is the table's PRIMARY KEY as its catalog read it; a custom
    # template's key, a view's or a file's is only declared.
    enforced = t.kind == "discovered" and connection_type in ENFORCING_SOURCES
    return unenforced_key_reason("table", t.primary_key, enforced) or unpageable_key_reason(
        t.fields, t.primary_key
    )


def _table_snapshot(t: DataTableRecord) -> TemplateSnapshot:
    """A data table read as a template: its warehouse table, ordered by its key (the hidden
    row id when it has none)."""
    fields = list(t.fields)
    if not t.primary_key:
        fields.append(ColumnInfo(ROW_ID, "int64", False))
    return TemplateSnapshot(
        id=t.id,
        name=t.name,
        source_table=t.physical_name,
        source=TableRef(None, t.physical_name),
        fields=fields,
        primary_key=t.primary_key or [ROW_ID],
        cursor_field=None,
        date_field=None,
        query=None,
    )
