"""Executions as users see them: create (with idempotency), re-run, cancel, and the reads.

A run row *is* the job: creating an execution enqueues its first run in the same transaction.
What workers do with runs is the run queue's (``run_queue.py``); every status change goes
through ``transitions.transition``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from egress.db.engine import Repository
from egress.db.paging import Page, fetch_page
from egress.db.tables import executions, extraction_configurations, run_files, runs
from egress.db.transitions import enqueue_run, release_next, transition
from egress.domain.clock import Clock, new_id, utcnow
from egress.domain.errors import Conflict, Invalid, NotFound
from egress.domain.identity import SYSTEM, Subject, subject_from_json, subject_json
from egress.domain.paging import PageRequest
from egress.domain.spec import ExecutionSpec
from egress.domain.status import (
    CONFIGURATION_HOLD_REASON,
    RunKind,
    RunStatus,
    cancel_blocker,
    rerun_blocker,
)

# Two triggers racing for the "one active run" slot: the loser retries as ON_HOLD.
_INSERT_RETRIES = 5
IDEMPOTENCY_WINDOW = timedelta(hours=24)


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


@dataclass(frozen=True)
class SyncState:
    """A configuration's latest run (status, failure) and when a run last succeeded."""

    latest_status: RunStatus | None
    latest_error: str | None
    last_success_at: datetime | None


def _run_record(row: Row[Any], files: list[FileRecord]) -> RunRecord:
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


def _file_record(row: Row[Any]) -> FileRecord:
    return FileRecord(**{name: getattr(row, f"file_{name}") for name in _FILE_COLUMNS})


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


_DETAILS = _details_query()


class ExecutionRepo(Repository):
    def __init__(
        self, engine: Engine, clock: Clock = utcnow, max_runs_per_workspace: int | None = None
    ) -> None:
        super().__init__(engine, clock)
        # Runs of a workspace active at once: further ones are created ON_HOLD.
        self._max_runs = max_runs_per_workspace

    # ----------------------------------------------------------------- triggering
    def create(
        self,
        workspace_id: str,
        configuration_id: str,
        spec: ExecutionSpec,
        trigger: str,
        now: datetime,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        triggered_by: Subject = SYSTEM,
    ) -> tuple[ExecutionRecord, bool]:
        """Create an execution with run 1 queued; returns (execution, created).

        The same idempotency key with the same request hash within 24 h returns the earlier
        execution instead of creating one; with a different hash it is refused.
        """
        for _ in range(_INSERT_RETRIES):
            earlier: str | None = None
            try:
                with self._engine.begin() as conn:
                    if idempotency_key is not None:
                        earlier = self._idempotent_match(
                            conn, workspace_id, configuration_id, idempotency_key, request_hash, now
                        )
                    if earlier is not None:
                        exec_id = earlier
                    else:
                        exec_id = self._insert_execution(
                            conn,
                            workspace_id,
                            configuration_id,
                            spec,
                            trigger,
                            now,
                            idempotency_key,
                            request_hash,
                            triggered_by,
                        )
            except IntegrityError:
                continue  # lost a race for the active slot or the key: look again
            # Read after commit: a second connection inside the transaction would wait on
            # SQLite's write lock held by this very request.
            return self.get(workspace_id, configuration_id, exec_id), earlier is None
        raise Conflict("too many concurrent triggers of this configuration; try again")

    def _insert_execution(
        self,
        conn: Connection,
        workspace_id: str,
        configuration_id: str,
        spec: ExecutionSpec,
        trigger: str,
        now: datetime,
        idempotency_key: str | None,
        request_hash: str | None,
        triggered_by: Subject,
    ) -> str:
        exec_id = new_id()
        conn.execute(
            executions.insert().values(
                id=exec_id,
                workspace_id=workspace_id,
                configuration_id=configuration_id,
                parameters=spec.to_json(),
                trigger=trigger,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                created_at=now,
                triggered_by=subject_json(triggered_by),
            )
        )
        enqueue_run(
            conn,
            workspace_id,
            configuration_id,
            exec_id,
            1,
            now,
            max_per_workspace=self._max_runs,
        )
        return exec_id

    def _idempotent_match(
        self,
        conn: Connection,
        workspace_id: str,
        configuration_id: str,
        key: str,
        request_hash: str | None,
        now: datetime,
    ) -> str | None:
        row = conn.execute(
            sa.select(executions.c.id, executions.c.request_hash, executions.c.created_at).where(
                executions.c.workspace_id == workspace_id,
                executions.c.configuration_id == configuration_id,
                executions.c.idempotency_key == key,
            )
        ).one_or_none()
        if row is None:
            return None
        if now - row.created_at > IDEMPOTENCY_WINDOW:
            # The key expired: free it for this new request.
            conn.execute(
                executions.update().where(executions.c.id == row.id).values(idempotency_key=None)
            )
            return None
        if row.request_hash != request_hash:
            raise Invalid.at(
                ("header", "Idempotency-Key"),
                "this key was already used with a different request body",
            )
        return str(row.id)

    def rerun(
        self,
        workspace_id: str,
        configuration_id: str,
        execution_id: str,
        now: datetime,
        idempotency_key: str | None = None,
    ) -> tuple[ExecutionRecord, bool]:
        """Queue run N+1; returns (execution, created). A repeated key creates nothing."""
        for _ in range(_INSERT_RETRIES):
            seen = False
            try:
                with self._engine.begin() as conn:
                    seen = idempotency_key is not None and self._rerun_seen(
                        conn, execution_id, idempotency_key, now
                    )
                    if not seen:
                        self._queue_rerun(
                            conn,
                            workspace_id,
                            configuration_id,
                            execution_id,
                            now,
                            idempotency_key,
                        )
            except IntegrityError:
                continue
            return self.get(workspace_id, configuration_id, execution_id), not seen
        raise Conflict("too many concurrent re-runs of this execution; try again")

    def _queue_rerun(
        self,
        conn: Connection,
        workspace_id: str,
        configuration_id: str,
        execution_id: str,
        now: datetime,
        idempotency_key: str | None,
    ) -> None:
        latest = conn.execute(
            sa.select(runs.c.run_number, runs.c.status, runs.c.kind)
            .where(runs.c.execution_id == execution_id)
            .order_by(runs.c.run_number.desc())
            .limit(1)
            .with_for_update()
        ).one()
        blocker = rerun_blocker(RunStatus(latest.status))
        if blocker:
            raise Conflict(blocker)
        enqueue_run(
            conn,
            workspace_id,
            configuration_id,
            execution_id,
            latest.run_number + 1,
            now,
            RunKind(latest.kind),
            idempotency_key,
            self._max_runs,
        )

    def _rerun_seen(self, conn: Connection, execution_id: str, key: str, now: datetime) -> bool:
        row = conn.execute(
            sa.select(runs.c.id, runs.c.queued_at).where(
                runs.c.execution_id == execution_id, runs.c.idempotency_key == key
            )
        ).one_or_none()
        if row is None:
            return False
        if now - row.queued_at > IDEMPOTENCY_WINDOW:
            conn.execute(runs.update().where(runs.c.id == row.id).values(idempotency_key=None))
            return False
        return True

    # -------------------------------------------------------------------- reading
    def get(self, workspace_id: str, configuration_id: str, execution_id: str) -> ExecutionRecord:
        keys = {
            "workspace_id": workspace_id,
            "configuration_id": configuration_id,
            "execution_id": execution_id,
        }
        with self._reads.connect() as conn:
            rows = conn.execute(_DETAILS, keys).all()
        if not rows:  # an execution always has its run 1: no row, no execution
            raise NotFound(f"execution {execution_id} not found")
        run_rows: dict[str, Row[Any]] = {}
        files: dict[str, list[FileRecord]] = defaultdict(list)
        for r in rows:
            run_rows.setdefault(r.id, r)
            if r.file_sub_extract_id is not None:  # the outer join's row of a run without files
                files[r.id].append(_file_record(r))
        head = rows[0]
        return ExecutionRecord(
            id=execution_id,
            workspace_id=workspace_id,
            configuration_id=configuration_id,
            spec=ExecutionSpec.from_json(head.parameters),
            trigger=head.execution_trigger,
            created_at=head.execution_created_at,
            runs=[_run_record(r, files[run_id]) for run_id, r in run_rows.items()],
            triggered_by=subject_from_json(head.execution_triggered_by),
        )

    def list_page(
        self, workspace_id: str, configuration_id: str, page: PageRequest
    ) -> Page[ExecutionSummary]:
        latest_no = (
            sa.select(runs.c.execution_id, sa.func.max(runs.c.run_number).label("n"))
            .group_by(runs.c.execution_id)
            .subquery()
        )
        query = (
            sa.select(
                executions.c.id,
                executions.c.configuration_id,
                runs.c.status,
                runs.c.started_at,
                runs.c.completed_at,
                runs.c.record_count,
                latest_no.c.n,
            )
            .join(latest_no, latest_no.c.execution_id == executions.c.id)
            .join(
                runs,
                sa.and_(runs.c.execution_id == executions.c.id, runs.c.run_number == latest_no.c.n),
            )
            .where(
                executions.c.workspace_id == workspace_id,
                executions.c.configuration_id == configuration_id,
            )
            .order_by(executions.c.created_at.desc(), executions.c.id.desc())
        )
        with self._reads.connect() as conn:
            rows, total = fetch_page(conn, query, page)
        items = [
            ExecutionSummary(
                id=r.id,
                configuration_id=r.configuration_id,
                latest_status=RunStatus(r.status),
                latest_started_at=r.started_at,
                latest_completed_at=r.completed_at,
                latest_record_count=r.record_count,
                total_runs=r.n,
            )
            for r in rows
        ]
        return Page(items, total, page)

    def cancel(
        self, workspace_id: str, configuration_id: str, execution_id: str, now: datetime
    ) -> ExecutionRecord:
        """PENDING/ON_HOLD runs end at once; an IN_PROGRESS run is asked to stop."""
        execution = self.get(workspace_id, configuration_id, execution_id)
        latest = execution.latest
        blocker = cancel_blocker(latest.status)
        if blocker:
            raise Conflict(blocker)
        with self._engine.begin() as conn:
            if latest.status is RunStatus.IN_PROGRESS:
                # Not a status change: its worker stops and ends it CANCELLED.
                changed = conn.execute(
                    runs.update()
                    .where(runs.c.id == latest.id, runs.c.status == RunStatus.IN_PROGRESS.value)
                    .values(cancel_requested=True)
                ).rowcount
            else:
                changed = (
                    transition(
                        conn,
                        latest.id,
                        latest.status,
                        RunStatus.CANCELLED,
                        now,
                        {"completed_at": now},
                    )
                    is not None
                )
                if changed and latest.status is RunStatus.PENDING:
                    release_next(conn, workspace_id, now, self._max_runs)
            if not changed:
                raise Conflict("the run changed status while cancelling; look again and retry")
        return self.get(workspace_id, configuration_id, execution_id)

    def sync_state(self, workspace_id: str, configuration_id: str) -> SyncState:
        ok = (RunStatus.COMPLETED.value, RunStatus.COMPLETED_NO_DATA.value)
        mine = sa.and_(
            runs.c.workspace_id == workspace_id, runs.c.configuration_id == configuration_id
        )
        with self._reads.connect() as conn:
            latest = conn.execute(
                sa.select(runs.c.status, runs.c.error_message)
                .where(mine)
                .order_by(runs.c.queued_at.desc(), runs.c.id.desc())
                .limit(1)
            ).one_or_none()
            success = conn.execute(
                sa.select(sa.func.max(runs.c.completed_at)).where(mine, runs.c.status.in_(ok))
            ).scalar_one_or_none()
        return SyncState(
            None if latest is None else RunStatus(latest.status),
            None if latest is None else latest.error_message,
            success,
        )

    def configuration_name(self, workspace_id: str, configuration_id: str) -> str:
        with self._reads.connect() as conn:
            name = conn.execute(
                sa.select(extraction_configurations.c.name).where(
                    extraction_configurations.c.workspace_id == workspace_id,
                    extraction_configurations.c.id == configuration_id,
                )
            ).scalar_one_or_none()
        if name is None:
            raise NotFound(f"extraction configuration {configuration_id} not found")
        return str(name)
