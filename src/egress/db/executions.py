"""Executions and their runs: the queue, leases, fencing and results.

A run row *is* the job: creating an execution enqueues its first run in the same transaction.
Every state change is one conditional UPDATE on the expected status (and, for a worker, its
lease token), so two actors can never both win and a worker that lost its lease commits nothing.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from egress.db.engine import Repository
from egress.db.paging import Page, fetch_page
from egress.db.tables import (
    executions,
    extraction_configurations,
    pending_publications,
    run_files,
    runs,
)
from egress.domain.clock import new_id
from egress.domain.errors import Conflict, Invalid, NotFound
from egress.domain.incremental import Observation, later
from egress.domain.paging import PageRequest
from egress.domain.status import (
    ACTIVE,
    RunStatus,
    after_lost_attempt,
    cancel_blocker,
    rerun_blocker,
)

# Two triggers racing for the "one active run" slot: the loser retries as ON_HOLD.
_INSERT_RETRIES = 5
IDEMPOTENCY_WINDOW = timedelta(hours=24)
RUNS_CHANNEL = "egress_runs"
_ACTIVE_VALUES = [s.value for s in ACTIVE]


class _LeaseLost(Exception):
    """Rolls back an outcome whose lease was lost before it could be recorded."""


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

    @property
    def next_attempt_at(self) -> datetime | None:
        """When a run waiting for a retry may run next; None when it is not waiting."""
        return self.not_before if self.status is RunStatus.PENDING else None


@dataclass(frozen=True)
class ExecutionRecord:
    id: str
    workspace_id: str
    configuration_id: str
    parameters: dict[str, Any]
    trigger: str
    created_at: datetime
    runs: list[RunRecord]

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
class ClaimedRun:
    run_id: str
    workspace_id: str
    execution_id: str
    configuration_id: str
    run_number: int
    attempt: int
    lease_token: str
    process_id: str
    started_at: datetime
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Heartbeat:
    alive: bool  # False: the lease is gone; the worker must stop and commit nothing
    cancel_requested: bool


@dataclass(frozen=True)
class Outcome:
    status: RunStatus
    record_count: int | None  # records delivered; None for a run that delivered nothing
    error_message: str | None = None
    files: list[FileRecord] = field(default_factory=list)
    manifest_key: str | None = None
    warnings: list[str] = field(default_factory=list)
    # Incremental runs: the configuration's watermark moves to this on success, never back.
    watermark: Any = None
    processed: int | None = None  # records read, when they differ from those delivered
    # A snapshot window (PostgreSQL): the watermark and snapshot move together, and only
    # from the state the window was built on (a re-run of an older execution moves nothing).
    window: dict[str, Any] | None = None
    retryable: bool | None = None  # a FAILED outcome: whether its failure was transient

    @classmethod
    def stopped(
        cls, status: RunStatus, processed: int, error_message: str | None = None
    ) -> Outcome:
        """A failed or cancelled run delivered nothing: its record count is 0 (a number, as the
        seed API's shape has it) and what it read stays its progress. A run fails through an
        outcome only for a terminal reason (transient ones go back to the queue first)."""
        retryable = False if status is RunStatus.FAILED else None
        return cls(status, 0, error_message, processed=processed, retryable=retryable)


@dataclass(frozen=True)
class IncrementalState:
    """What a configuration's next incremental run builds on."""

    watermark: Any
    snapshot: str | None  # the last completed snapshot window's own snapshot
    quiet: bool  # nothing was in progress in ``snapshot``: no late commit to look for
    observations: list[Observation]


@dataclass(frozen=True)
class Leftover:
    """What a dead attempt may have left in storage: its temporary files, a half-published key."""

    run_id: str
    workspace_id: str
    lease_token: str
    publishing_keys: list[str]


@dataclass(frozen=True)
class ReapCounts:
    requeued: int
    failed: int
    cancelled: int = 0
    leftovers: list[Leftover] = field(default_factory=list)


@dataclass(frozen=True)
class _Attempt:
    """An IN_PROGRESS run's attempt as the row said when it was locked."""

    run_id: str
    lease_token: str
    attempt: int
    cancel_requested: bool
    configuration_id: str


def _notify(conn: Connection) -> None:
    """Wake listening workers when this transaction commits (PostgreSQL only; SQLite polls)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": RUNS_CHANNEL})


def _run_record(row: Row[Any], files: list[FileRecord]) -> RunRecord:
    return RunRecord(
        id=row.id,
        run_number=row.run_number,
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
    )


def _file_record(row: Row[Any]) -> FileRecord:
    return FileRecord(
        sub_extract_id=row.sub_extract_id,
        sub_extract_value=row.sub_extract_value,
        storage_key=row.storage_key,
        file_name=row.file_name,
        content_type=row.content_type,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        record_count=row.record_count,
    )


class ExecutionRepo(Repository):
    # ----------------------------------------------------------------- triggering
    def create(
        self,
        workspace_id: str,
        configuration_id: str,
        parameters: dict[str, Any],
        trigger: str,
        now: datetime,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
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
                            parameters,
                            trigger,
                            now,
                            idempotency_key,
                            request_hash,
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
        parameters: dict[str, Any],
        trigger: str,
        now: datetime,
        idempotency_key: str | None,
        request_hash: str | None,
    ) -> str:
        exec_id = new_id()
        conn.execute(
            executions.insert().values(
                id=exec_id,
                workspace_id=workspace_id,
                configuration_id=configuration_id,
                parameters=parameters,
                trigger=trigger,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                created_at=now,
            )
        )
        self._enqueue_run(conn, workspace_id, configuration_id, exec_id, 1, now)
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

    def _enqueue_run(
        self,
        conn: Connection,
        workspace_id: str,
        configuration_id: str,
        execution_id: str,
        run_number: int,
        now: datetime,
        idempotency_key: str | None = None,
    ) -> None:
        busy = conn.execute(
            sa.select(runs.c.id)
            .where(runs.c.configuration_id == configuration_id, runs.c.status.in_(_ACTIVE_VALUES))
            .limit(1)
        ).first()
        held = conn.execute(
            sa.select(runs.c.id)
            .where(
                runs.c.configuration_id == configuration_id,
                runs.c.status == RunStatus.ON_HOLD.value,
            )
            .limit(1)
        ).first()
        status = RunStatus.ON_HOLD if busy or held else RunStatus.PENDING
        conn.execute(
            runs.insert().values(
                id=new_id(),
                workspace_id=workspace_id,
                execution_id=execution_id,
                configuration_id=configuration_id,
                run_number=run_number,
                status=status.value,
                attempt=1,
                queued_at=now,
                cancel_requested=False,
                idempotency_key=idempotency_key,
            )
        )
        if held and not busy:
            self._release_next(conn, configuration_id)  # heal a queue left without an active run
        elif status is RunStatus.PENDING:
            _notify(conn)

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
            sa.select(runs.c.run_number, runs.c.status)
            .where(runs.c.execution_id == execution_id)
            .order_by(runs.c.run_number.desc())
            .limit(1)
            .with_for_update()
        ).one()
        blocker = rerun_blocker(RunStatus(latest.status))
        if blocker:
            raise Conflict(blocker)
        self._enqueue_run(
            conn,
            workspace_id,
            configuration_id,
            execution_id,
            latest.run_number + 1,
            now,
            idempotency_key,
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
        with self._reads.connect() as conn:
            row = conn.execute(
                sa.select(executions).where(
                    executions.c.workspace_id == workspace_id,
                    executions.c.configuration_id == configuration_id,
                    executions.c.id == execution_id,
                )
            ).one_or_none()
            if row is None:
                raise NotFound(f"execution {execution_id} not found")
            run_rows = conn.execute(
                sa.select(runs)
                .where(runs.c.execution_id == execution_id)
                .order_by(runs.c.run_number)
            ).all()
            files: dict[str, list[FileRecord]] = defaultdict(list)
            for f in conn.execute(
                sa.select(run_files)
                .where(run_files.c.run_id.in_([r.id for r in run_rows]))
                .order_by(run_files.c.sub_extract_id)
            ):
                files[f.run_id].append(_file_record(f))
        return ExecutionRecord(
            id=row.id,
            workspace_id=row.workspace_id,
            configuration_id=row.configuration_id,
            parameters=dict(row.parameters),
            trigger=row.trigger,
            created_at=row.created_at,
            runs=[_run_record(r, files[r.id]) for r in run_rows],
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

    # -------------------------------------------------------------------- workers
    def claim(self, process_id: str, lease: timedelta, now: datetime) -> ClaimedRun | None:
        """Take the oldest PENDING run, if any, under a fresh lease."""
        token = secrets.token_hex(16)
        oldest = (
            sa.select(runs.c.id)
            # A queued run with a cancel request is the reaper's to cancel, never to run; one
            # waiting for a retry runs when its backoff is over.
            .where(
                runs.c.status == RunStatus.PENDING.value,
                runs.c.cancel_requested.is_(False),
                sa.or_(runs.c.not_before.is_(None), runs.c.not_before <= now),
            )
            .order_by(runs.c.queued_at, runs.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        with self._engine.begin() as conn:
            row = conn.execute(
                runs.update()
                .where(runs.c.id == oldest, runs.c.status == RunStatus.PENDING.value)
                .values(
                    status=RunStatus.IN_PROGRESS.value,
                    lease_token=token,
                    process_id=process_id,
                    lease_expires_at=now + lease,
                    started_at=now,
                    processed=0,
                    progress_at=now,
                    not_before=None,
                )
                .returning(
                    runs.c.id,
                    runs.c.workspace_id,
                    runs.c.execution_id,
                    runs.c.configuration_id,
                    runs.c.run_number,
                    runs.c.attempt,
                )
            ).one_or_none()
            if row is None:
                return None
            params = conn.execute(
                sa.select(executions.c.parameters).where(executions.c.id == row.execution_id)
            ).scalar_one()
        return ClaimedRun(
            run_id=row.id,
            workspace_id=row.workspace_id,
            execution_id=row.execution_id,
            configuration_id=row.configuration_id,
            run_number=row.run_number,
            attempt=row.attempt,
            lease_token=token,
            process_id=process_id,
            started_at=now,
            parameters=dict(params),
        )

    def heartbeat(
        self, run_id: str, lease_token: str, processed: int, lease: timedelta, now: datetime
    ) -> Heartbeat:
        with self._engine.begin() as conn:
            row = conn.execute(
                runs.update()
                .where(
                    runs.c.id == run_id,
                    runs.c.lease_token == lease_token,
                    runs.c.status == RunStatus.IN_PROGRESS.value,
                )
                .values(lease_expires_at=now + lease, processed=processed, progress_at=now)
                .returning(runs.c.cancel_requested)
            ).one_or_none()
        if row is None:
            return Heartbeat(alive=False, cancel_requested=False)
        return Heartbeat(alive=True, cancel_requested=bool(row.cancel_requested))

    def mark_publishing(self, claimed: ClaimedRun, keys: list[str]) -> bool:
        """Record the keys about to be published, fenced; False when the lease is gone."""
        try:
            with self._engine.begin() as conn:
                self._fence(conn, claimed)
                conn.execute(
                    pending_publications.insert(),
                    [{"run_id": claimed.run_id, "storage_key": key} for key in keys],
                )
        except _LeaseLost:
            return False
        return True

    def watermark(self, configuration_id: str) -> Any:
        return self.incremental_state(configuration_id).watermark

    def incremental_state(self, configuration_id: str) -> IncrementalState:
        T = extraction_configurations
        with self._reads.connect() as conn:
            row = conn.execute(
                sa.select(T.c.watermark, T.c.incremental_state).where(T.c.id == configuration_id)
            ).one()
        state = row.incremental_state or {}
        return IncrementalState(
            watermark=row.watermark,
            snapshot=state.get("snapshot"),
            quiet=bool(state.get("quiet")),
            observations=[Observation.from_json(o) for o in state.get("observations", [])],
        )

    def freeze_window(
        self,
        claimed: ClaimedRun,
        window: dict[str, Any],
        observations: list[Observation] | None = None,
    ) -> bool:
        """Store the incremental window on the execution once, fenced; re-runs reuse it. A
        lagged window records the configuration's observations (with the run's own) with it."""
        try:
            with self._engine.begin() as conn:
                self._fence(conn, claimed)
                if observations is not None:
                    self._set_state(
                        conn,
                        claimed.configuration_id,
                        observations=[o.to_json() for o in observations],
                    )
                params = dict(
                    conn.execute(
                        sa.select(executions.c.parameters).where(
                            executions.c.id == claimed.execution_id
                        )
                    ).scalar_one()
                )
                params.setdefault("window", window)
                conn.execute(
                    executions.update()
                    .where(executions.c.id == claimed.execution_id)
                    .values(parameters=params)
                )
        except _LeaseLost:
            return False
        return True

    def _advance_watermark(self, conn: Connection, configuration_id: str, value: Any) -> None:
        current = conn.execute(
            sa.select(extraction_configurations.c.watermark)
            .where(extraction_configurations.c.id == configuration_id)
            .with_for_update()
        ).scalar_one_or_none()
        if current is None or later(value, current):
            conn.execute(
                extraction_configurations.update()
                .where(extraction_configurations.c.id == configuration_id)
                .values(watermark=value)
            )

    def _state(self, conn: Connection, configuration_id: str) -> tuple[Any, dict[str, Any]]:
        """The configuration's watermark and incremental state, locked until commit."""
        T = extraction_configurations
        row = conn.execute(
            sa.select(T.c.watermark, T.c.incremental_state)
            .where(T.c.id == configuration_id)
            .with_for_update()
        ).one()
        return row.watermark, dict(row.incremental_state or {})

    def _set_state(self, conn: Connection, configuration_id: str, **changes: Any) -> None:
        _, state = self._state(conn, configuration_id)
        conn.execute(
            extraction_configurations.update()
            .where(extraction_configurations.c.id == configuration_id)
            .values(incremental_state={**state, **changes})
        )

    def _advance_snapshot(
        self, conn: Connection, configuration_id: str, window: dict[str, Any]
    ) -> None:
        """Move the watermark and snapshot to the window's, only from the pair it was built
        on: rows at or below the watermark visible in the snapshot are all delivered."""
        watermark, state = self._state(conn, configuration_id)
        if watermark != window["low"] or state.get("snapshot") != window["previousSnapshot"]:
            return
        high = window["high"]
        conn.execute(
            extraction_configurations.update()
            .where(extraction_configurations.c.id == configuration_id)
            .values(
                watermark=high if watermark is None or later(high, watermark) else watermark,
                incremental_state={
                    **state,
                    "snapshot": window["snapshot"],
                    "quiet": window["quiet"],
                },
            )
        )

    def _fence(self, conn: Connection, claimed: ClaimedRun) -> None:
        """Lock the run row if this worker still holds its lease; else raise _LeaseLost."""
        held = conn.execute(
            sa.select(runs.c.id)
            .where(
                runs.c.id == claimed.run_id,
                runs.c.lease_token == claimed.lease_token,
                runs.c.status == RunStatus.IN_PROGRESS.value,
            )
            .with_for_update()
        ).first()
        if held is None:
            raise _LeaseLost

    def holds_lease(self, claimed: ClaimedRun, now: datetime) -> bool:
        with self._reads.connect() as conn:
            expires = conn.execute(
                sa.select(runs.c.lease_expires_at).where(
                    runs.c.id == claimed.run_id,
                    runs.c.lease_token == claimed.lease_token,
                    runs.c.status == RunStatus.IN_PROGRESS.value,
                )
            ).scalar_one_or_none()
        return expires is not None and expires > now

    def is_referenced(self, storage_key: str) -> bool:
        with self._reads.connect() as conn:
            return (
                conn.execute(
                    sa.select(run_files.c.id)
                    .where(run_files.c.storage_key == storage_key)
                    .union_all(sa.select(runs.c.id).where(runs.c.manifest_key == storage_key))
                    .limit(1)
                ).first()
                is not None
            )

    def finish(self, claimed: ClaimedRun, outcome: Outcome, now: datetime) -> bool:
        """Record the outcome, fenced by the lease token. False: the lease was lost first."""
        try:
            with self._engine.begin() as conn:
                self._record_outcome(conn, claimed, outcome, now)
        except _LeaseLost:
            return False
        return True

    def _record_outcome(
        self, conn: Connection, claimed: ClaimedRun, outcome: Outcome, now: datetime
    ) -> None:
        updated = conn.execute(
            runs.update()
            .where(
                runs.c.id == claimed.run_id,
                runs.c.lease_token == claimed.lease_token,
                runs.c.status == RunStatus.IN_PROGRESS.value,
            )
            .values(
                status=outcome.status.value,
                completed_at=now,
                record_count=outcome.record_count,
                processed=outcome.record_count if outcome.processed is None else outcome.processed,
                progress_at=now,
                error_message=outcome.error_message,
                lease_token=None,
                lease_expires_at=None,
                manifest_key=outcome.manifest_key,
                warnings=outcome.warnings or None,
                retryable=outcome.retryable,
            )
        ).rowcount
        if updated != 1:
            raise _LeaseLost
        conn.execute(
            pending_publications.delete().where(pending_publications.c.run_id == claimed.run_id)
        )
        if outcome.window is not None and "snapshot" in outcome.window:
            self._advance_snapshot(conn, claimed.configuration_id, outcome.window)
        elif outcome.watermark is not None:
            self._advance_watermark(conn, claimed.configuration_id, outcome.watermark)
        for f in outcome.files:
            conn.execute(
                run_files.insert().values(
                    id=new_id(),
                    workspace_id=claimed.workspace_id,
                    run_id=claimed.run_id,
                    created_at=now,
                    **f.__dict__,
                )
            )
        self._release_next(conn, claimed.configuration_id)

    def _release_next(self, conn: Connection, configuration_id: str) -> None:
        """The configuration's active run ended: the oldest held run becomes PENDING."""
        oldest_held = (
            sa.select(runs.c.id)
            .where(
                runs.c.configuration_id == configuration_id,
                runs.c.status == RunStatus.ON_HOLD.value,
            )
            .order_by(runs.c.queued_at, runs.c.id)
            .limit(1)
            .scalar_subquery()
        )
        released = conn.execute(
            runs.update()
            .where(runs.c.id == oldest_held, runs.c.status == RunStatus.ON_HOLD.value)
            .values(status=RunStatus.PENDING.value)
        ).rowcount
        if released:
            _notify(conn)

    def release(self, claimed: ClaimedRun, now: datetime) -> RunStatus | None:
        """Give a run back to the queue at once (graceful shutdown), fenced by the lease; a
        run whose cancel was requested ends CANCELLED instead. None: the lease was gone."""
        return self._end_own_attempt(claimed, now, None, None, None)

    def fail_attempt(
        self,
        claimed: ClaimedRun,
        now: datetime,
        max_attempts: int,
        reason: str,
        not_before: datetime | None = None,
    ) -> RunStatus | None:
        """This attempt failed for a transient ``reason`` (the source stalled, a connection
        broke): another attempt, not claimed before ``not_before``; FAILED after the last,
        CANCELLED when cancelled meanwhile. None: the lease was gone."""
        return self._end_own_attempt(claimed, now, max_attempts, reason, not_before)

    def _end_own_attempt(
        self,
        claimed: ClaimedRun,
        now: datetime,
        max_attempts: int | None,
        reason: str | None,
        not_before: datetime | None,
    ) -> RunStatus | None:
        with self._engine.begin() as conn:
            row = conn.execute(
                sa.select(runs.c.id, runs.c.attempt, runs.c.cancel_requested)
                .where(
                    runs.c.id == claimed.run_id,
                    runs.c.lease_token == claimed.lease_token,
                    runs.c.status == RunStatus.IN_PROGRESS.value,
                )
                .with_for_update()
            ).one_or_none()
            if row is None:
                return None
            # The attempt removed what it was publishing; the next one may choose those keys.
            conn.execute(
                pending_publications.delete().where(pending_publications.c.run_id == claimed.run_id)
            )
            return self._end_attempt(
                conn,
                _Attempt(
                    row.id,
                    claimed.lease_token,
                    row.attempt,
                    bool(row.cancel_requested),
                    claimed.configuration_id,
                ),
                now,
                max_attempts,
                reason,
                not_before,
            )

    def _end_attempt(
        self,
        conn: Connection,
        run: _Attempt,
        now: datetime,
        max_attempts: int | None,
        reason: str | None,
        not_before: datetime | None = None,
    ) -> RunStatus | None:
        """End an attempt that has no outcome of its own: one conditional UPDATE, fenced by
        the attempt's lease, to where ``after_lost_attempt`` says."""
        target = after_lost_attempt(run.attempt, max_attempts, run.cancel_requested)
        values: dict[str, Any] = {
            "status": target.value,
            "lease_token": None,
            "lease_expires_at": None,
        }
        if target is RunStatus.PENDING:
            values |= {"attempt": run.attempt + 1, "processed": None, "not_before": not_before}
        else:
            values["completed_at"] = now
        if target is RunStatus.CANCELLED:
            values |= {"error_message": None, "retryable": None}
        elif reason is not None:
            values["error_message"] = f"{reason}; attempt {run.attempt} of {max_attempts}"
        elif target is RunStatus.FAILED:
            values["error_message"] = f"worker lost after {run.attempt} attempts"
        if values.get("error_message"):
            values["retryable"] = True  # every attempt lost this way may succeed another time
        updated = conn.execute(
            runs.update()
            .where(
                runs.c.id == run.run_id,
                runs.c.lease_token == run.lease_token,
                runs.c.status == RunStatus.IN_PROGRESS.value,
            )
            .values(**values)
        ).rowcount
        if updated != 1:
            return None
        if target is RunStatus.PENDING:
            _notify(conn)
        else:
            self._release_next(conn, run.configuration_id)
        return target

    def reap(self, now: datetime, max_attempts: int) -> ReapCounts:
        """Runs whose lease expired: back to PENDING (attempt + 1), FAILED after the last,
        CANCELLED when their cancel was requested. Queued runs with a cancel request (left by
        an older version) end CANCELLED too: a cancelled run never runs again."""
        requeued = failed = cancelled = 0
        leftovers: list[Leftover] = []
        with self._engine.begin() as conn:
            expired = conn.execute(
                sa.select(
                    runs.c.id,
                    runs.c.workspace_id,
                    runs.c.attempt,
                    runs.c.lease_token,
                    runs.c.configuration_id,
                    runs.c.cancel_requested,
                )
                .where(
                    runs.c.status == RunStatus.IN_PROGRESS.value,
                    runs.c.lease_expires_at < now,
                )
                .with_for_update(skip_locked=True)
            ).all()
            for r in expired:
                pending = pending_publications.c.run_id == r.id
                keys = list(
                    conn.execute(
                        sa.select(pending_publications.c.storage_key).where(pending)
                    ).scalars()
                )
                conn.execute(pending_publications.delete().where(pending))
                leftovers.append(Leftover(r.id, r.workspace_id, r.lease_token, keys))
                attempt = _Attempt(
                    r.id, r.lease_token, r.attempt, bool(r.cancel_requested), r.configuration_id
                )
                target = self._end_attempt(conn, attempt, now, max_attempts, None)
                requeued += target is RunStatus.PENDING
                failed += target is RunStatus.FAILED
                cancelled += target is RunStatus.CANCELLED
            cancelled += self._cancel_queued(conn, now)
        return ReapCounts(
            requeued=requeued, failed=failed, cancelled=cancelled, leftovers=leftovers
        )

    def _cancel_queued(self, conn: Connection, now: datetime) -> int:
        queued = conn.execute(
            sa.select(runs.c.id, runs.c.status, runs.c.configuration_id)
            .where(
                runs.c.status.in_([RunStatus.PENDING.value, RunStatus.ON_HOLD.value]),
                runs.c.cancel_requested.is_(True),
            )
            .with_for_update(skip_locked=True)
        ).all()
        for r in queued:
            changed = conn.execute(
                runs.update()
                .where(runs.c.id == r.id, runs.c.status == r.status)
                .values(status=RunStatus.CANCELLED.value, completed_at=now)
            ).rowcount
            if changed and r.status == RunStatus.PENDING.value:
                self._release_next(conn, r.configuration_id)
        return len(queued)

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
                changed = conn.execute(
                    runs.update()
                    .where(runs.c.id == latest.id, runs.c.status == RunStatus.IN_PROGRESS.value)
                    .values(cancel_requested=True)
                ).rowcount
            else:
                changed = conn.execute(
                    runs.update()
                    .where(runs.c.id == latest.id, runs.c.status == latest.status.value)
                    .values(status=RunStatus.CANCELLED.value, completed_at=now)
                ).rowcount
                if changed and latest.status is RunStatus.PENDING:
                    self._release_next(conn, configuration_id)
            if not changed:
                raise Conflict("the run changed status while cancelling; look again and retry")
        return self.get(workspace_id, configuration_id, execution_id)

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
