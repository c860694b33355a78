"""What the execution reads return: files, runs and executions as records, and the one query
that reads an execution's details (a status poll's only read)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from egress.db.tables import executions, run_files, runs
from egress.domain.identity import SYSTEM, Subject
from egress.domain.spec import ExecutionSpec
from egress.domain.status import CONFIGURATION_HOLD_REASON, RunKind, RunStatus


@dataclass(frozen=True)
class FileRecord:
    sub_extract_id: str
    sub_extract_value: str | None
    storage_key: str
    file_name: str
    content_type: str
    size_bytes: int
    sha256: str
    record_count: int


@dataclass(frozen=True)
class RunRecord:
    id: str
    run_number: int
    kind: RunKind
    status: RunStatus
    attempt: int
    process_id: str | None
    queued_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    record_count: int | None
    processed: int | None
    error_message: str | None
    estimated_rows: int | None = None  # the source's estimate of the rows it reads
    manifest_key: str | None = None
    files: list[FileRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    retryable: bool | None = None  # whether the failure in error_message was transient
    not_before: datetime | None = None  # a PENDING run waiting for a retry: not claimed before
    hold_reason: str | None = None  # why an ON_HOLD run waits

    @property
    def next_attempt_at(self) -> datetime | None:
        """When a run waiting for a retry may run next; None when it is not waiting."""
        return self.not_before if self.status is RunStatus.PENDING else None


@dataclass(frozen=True)
class ExecutionRecord:
    id: str
    workspace_id: str
    configuration_id: str
    spec: ExecutionSpec
    trigger: str
    created_at: datetime
    runs: list[RunRecord]
    triggered_by: Subject = SYSTEM
    schedule_id: str | None = None  # the slot a scheduled or backfill execution fired for
    due_at: datetime | None = None
    catch_up: bool | None = None

    @property
    def latest(self) -> RunRecord:
        return self.runs[-1]

    def run(self, number: int) -> RunRecord | None:
        return next((r for r in self.runs if r.run_number == number), None)


@dataclass(frozen=True)
class ExecutionSummary:
    id: str
    configuration_id: str
    latest_status: RunStatus
    latest_started_at: datetime | None
    latest_completed_at: datetime | None
    latest_record_count: int | None
    total_runs: int


def run_record(row: Row[Any], files: list[FileRecord]) -> RunRecord:
    return RunRecord(
        id=row.id,
        run_number=row.run_number,
        kind=RunKind(row.kind),
        status=RunStatus(row.status),
        attempt=row.attempt,
        process_id=row.process_id,
        queued_at=row.queued_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        record_count=row.record_count,
        processed=row.processed,
        error_message=row.error_message,
        estimated_rows=row.estimated_rows,
        manifest_key=row.manifest_key,
        files=files,
        warnings=list(row.warnings or []),
        retryable=row.retryable,
        not_before=row.not_before,
        hold_reason=(
            (row.hold_reason or CONFIGURATION_HOLD_REASON)
            if row.status == RunStatus.ON_HOLD.value
            else None
        ),
    )


# The file columns of the details read, labelled apart from the run's own (id, record_count, …).
_FILE_COLUMNS = (
    "sub_extract_id",
    "sub_extract_value",
    "storage_key",
    "file_name",
    "content_type",
    "size_bytes",
    "sha256",
    "record_count",
)


def file_record(row: Row[Any], prefix: str = "") -> FileRecord:
    """A ``run_files`` row's file (its columns named with ``prefix``, as in the details read)."""
    return FileRecord(**{name: getattr(row, f"{prefix}{name}") for name in _FILE_COLUMNS})


def _details_query() -> sa.Select[Any]:
    """An execution's details in one query (a status poll's only read): its runs, each joined
    to its files, in run and part order. The frozen parameters, the widest value, come on the
    first row only: a split run with many parts does not repeat them per part.

    Built once, with bound parameters, so a poll neither builds nor hashes a statement."""
    first = sa.func.row_number().over(order_by=(runs.c.run_number, run_files.c.sub_extract_id))
    return (
        sa.select(
            sa.case((first == 1, executions.c.parameters), else_=sa.null()).label("parameters"),
            executions.c.trigger.label("execution_trigger"),
            executions.c.created_at.label("execution_created_at"),
            executions.c.triggered_by.label("execution_triggered_by"),
            executions.c.schedule_id.label("execution_schedule_id"),
            executions.c.due_at.label("execution_due_at"),
            executions.c.catch_up.label("execution_catch_up"),
            *runs.c,
            *(run_files.c[name].label(f"file_{name}") for name in _FILE_COLUMNS),
        )
        .select_from(
            executions.join(runs, runs.c.execution_id == executions.c.id).outerjoin(
                run_files, run_files.c.run_id == runs.c.id
            )
        )
        .where(
            executions.c.workspace_id == sa.bindparam("workspace_id"),
            executions.c.configuration_id == sa.bindparam("configuration_id"),
            executions.c.id == sa.bindparam("execution_id"),
        )
        .order_by(runs.c.run_number, run_files.c.sub_extract_id)
    )


DETAILS_QUERY = _details_query()
