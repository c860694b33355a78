"""Requests: the ids a client polls (``export-<uuid>``, ``extraction-<uuid>``), each mapped to
the run doing the work.

Creating an export request enqueues its run (kind ``export``, owned by the user) in the same
transaction. The partial unique index ``uq_runs_one_active_per_owner`` makes "one active export
job per user" hold in the database: of simultaneous creations one commits, every other one
breaks the index and finds the active request instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from egress.db.audit import AuditHook
from egress.db.engine import Repository
from egress.db.executions import (
    CHANGED_WHILE_CANCELLING,
    FileRecord,
    RunRecord,
    file_record,
    run_record,
)
from egress.db.paging import Page, fetch_page
from egress.db.tables import requests, run_files, runs
from egress.db.transitions import RequestTicket, cancel_run, enqueue_run, insert_request
from egress.domain.clock import Clock, utcnow
from egress.domain.errors import Conflict, NotFound
from egress.domain.export import ExportSpec, RequestStatus
from egress.domain.paging import PageRequest
from egress.domain.status import OWNER_ACTIVE, RunKind, RunStatus, cancel_blocker

_ACTIVE_VALUES = [s.value for s in OWNER_ACTIVE]
# Two creations racing: the loser looks for the winner; if that one ended meanwhile, try again.
_INSERT_RETRIES = 5


class OwnerBusy(Exception):
    """The owner already has an active request (its id)."""

    def __init__(self, request_id: str) -> None:
        super().__init__(request_id)
        self.request_id = request_id


@dataclass(frozen=True)
class RequestRecord:
    id: str
    workspace_id: str
    kind: RunKind
    owner: str
    object: str | None
    spec: ExportSpec | None
    result: dict[str, Any] | None
    created_at: datetime
    run: RunRecord
    execution_id: str | None  # an extraction's execution (None for an export job)


def _query() -> sa.Select[Any]:
    """A request with its run's columns (prefixed ``run__``)."""
    return sa.select(requests, *[c.label(f"run__{c.name}") for c in runs.c]).join(
        runs, runs.c.id == requests.c.run_id
    )


class _RunRow:
    """Attribute access over the run's columns: what ``run_record`` reads from a row."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def _record(row: Row[Any], files: list[FileRecord]) -> RequestRecord:
    m = row._mapping
    run = _RunRow({c.name: m[f"run__{c.name}"] for c in runs.c})
    return RequestRecord(
        id=m["id"],
        workspace_id=m["workspace_id"],
        kind=RunKind(m["kind"]),
        owner=m["owner"],
        object=m["object"],
        spec=ExportSpec.from_json(m["spec"]) if m["spec"] is not None else None,
        result=m["result"],
        created_at=m["created_at"],
        run=run_record(run, files),  # type: ignore[arg-type]
        execution_id=m["run__execution_id"],
    )


def _in_status(status: RequestStatus) -> sa.ColumnElement[bool]:
    """``domain.export.request_status`` as a condition on the run (a PENDING run after its
    first attempt waits for a retry: InProgress)."""
    pending = runs.c.status == RunStatus.PENDING.value
    first = runs.c.attempt <= 1
    return {
        RequestStatus.PENDING: sa.or_(
            runs.c.status == RunStatus.ON_HOLD.value, sa.and_(pending, first)
        ),
        RequestStatus.IN_PROGRESS: sa.or_(
            runs.c.status == RunStatus.IN_PROGRESS.value, sa.and_(pending, sa.not_(first))
        ),
        RequestStatus.COMPLETED: runs.c.status.in_(
            [RunStatus.COMPLETED.value, RunStatus.COMPLETED_NO_DATA.value]
        ),
        RequestStatus.FAILED: runs.c.status.in_(
            [RunStatus.FAILED.value, RunStatus.CANCELLED.value]
        ),
    }[status]


class RequestRepo(Repository):
    def __init__(
        self, engine: Engine, clock: Clock = utcnow, max_runs_per_workspace: int | None = None
    ) -> None:
        super().__init__(engine, clock)
        # Runs of a workspace active at once: an export job counts like any run.
        self._max_runs = max_runs_per_workspace

    def create_export(
        self,
        workspace_id: str,
        request_id: str,
        owner: str,
        spec: ExportSpec,
        now: datetime,
        audit: AuditHook | None = None,
    ) -> RequestRecord:
        """Queue an export job for ``owner``; OwnerBusy naming the active request instead."""
        for _ in range(_INSERT_RETRIES):
            try:
                with self._engine.begin() as conn:
                    run_id = enqueue_run(
                        conn,
                        workspace_id,
                        # The run's own "configuration": no other run shares it.
                        request_id.removeprefix("export-")[:36],
                        None,
                        1,
                        now,
                        RunKind.EXPORT,
                        max_per_workspace=self._max_runs,
                        owner=owner,
                    )
                    ticket = RequestTicket(request_id, owner, spec.object)
                    insert_request(
                        conn, workspace_id, ticket, RunKind.EXPORT, run_id, now, spec.to_json()
                    )
                    if audit is not None:
                        audit(conn, request_id, {})
            except IntegrityError:
                active = self.active(owner)
                if active is not None:
                    raise OwnerBusy(active) from None
                continue
            return self.get(workspace_id, request_id)
        raise Conflict("too many simultaneous export requests; try again")

    def active(self, owner: str) -> str | None:
        """The owner's request whose run is Pending or InProgress, if any."""
        with self._reads.connect() as conn:
            found = conn.execute(
                sa.select(requests.c.id)
                .join(runs, runs.c.id == requests.c.run_id)
                .where(runs.c.owner == owner, runs.c.status.in_(_ACTIVE_VALUES))
                .limit(1)
            ).scalar_one_or_none()
        return None if found is None else str(found)

    def get(self, workspace_id: str, request_id: str, owner: str | None = None) -> RequestRecord:
        """The request; with ``owner``, only that user's (another's is not found, as the list
        never shows it)."""
        query = _query().where(requests.c.workspace_id == workspace_id, requests.c.id == request_id)
        if owner is not None:
            query = query.where(requests.c.owner == owner)
        with self._reads.connect() as conn:
            row = conn.execute(query).one_or_none()
            if row is None:
                raise NotFound(f"request {request_id} not found")
            files = _files_by_run(conn, [row._mapping["run_id"]])
        return _record(row, files.get(row._mapping["run_id"], []))

    def list_page(
        self, workspace_id: str, owner: str, status: RequestStatus | None, page: PageRequest
    ) -> Page[RequestRecord]:
        """The owner's requests, newest first, with their files (an extraction's entry links
        its file as its GET does: before 2026-12-04 list entries had no files, so an
        extraction request's ``fileUrl`` was null in the list)."""
        query = (
            _query()
            .where(requests.c.workspace_id == workspace_id, requests.c.owner == owner)
            .order_by(requests.c.created_at.desc(), requests.c.id.desc())
        )
        if status is not None:
            query = query.where(_in_status(status))
        with self._reads.connect() as conn:
            rows, total = fetch_page(conn, query, page)
            files = _files_by_run(conn, [r._mapping["run_id"] for r in rows])
        return Page([_record(r, files.get(r._mapping["run_id"], [])) for r in rows], total, page)

    def cancel(
        self,
        workspace_id: str,
        request_id: str,
        owner: str,
        now: datetime,
        audit: AuditHook | None = None,
    ) -> RequestRecord:
        """Cancel ``owner``'s request (another's is not found)."""
        found = self.get(workspace_id, request_id, owner)
        run = found.run
        blocker = cancel_blocker(run.status)
        if blocker:
            raise Conflict(blocker)
        with self._engine.begin() as conn:
            if not cancel_run(conn, run.id, run.status, workspace_id, now, self._max_runs):
                raise Conflict(CHANGED_WHILE_CANCELLING)
            if audit is not None:
                audit(conn, request_id, {})
        return self.get(workspace_id, request_id)

    def expired_files(self, completed_before: datetime, limit: int) -> list[FileRecord]:
        """Export files of jobs completed at or before ``completed_before`` (retention)."""
        with self._reads.connect() as conn:
            rows = conn.execute(
                sa.select(run_files)
                .join(runs, runs.c.id == run_files.c.run_id)
                .where(
                    runs.c.kind == RunKind.EXPORT.value,
                    runs.c.completed_at <= completed_before,
                )
                .order_by(runs.c.completed_at)
                .limit(limit)
            ).all()
        return [file_record(r) for r in rows]

    def forget_file(self, storage_key: str) -> None:
        """The file was deleted: its record goes (the request reads as expired)."""
        with self._engine.begin() as conn:
            conn.execute(run_files.delete().where(run_files.c.storage_key == storage_key))


def _files_by_run(conn: Connection, run_ids: list[str]) -> dict[str, list[FileRecord]]:
    """The files of these runs (one query), by run id."""
    found: dict[str, list[FileRecord]] = {}
    if run_ids:
        for f in conn.execute(sa.select(run_files).where(run_files.c.run_id.in_(run_ids))):
            found.setdefault(f._mapping["run_id"], []).append(file_record(f))
    return found
