"""Executions as users see them: create (with idempotency), re-run, cancel, and the reads.

A run row *is* the job: creating an execution enqueues its first run in the same transaction.
What workers do with runs is the run queue's (``run_queue.py``); every status change goes
through ``transitions.transition``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from egress.db.audit import AuditHook, batched
from egress.db.engine import Repository
from egress.db.execution_records import (
    DETAILS_QUERY,
    ExecutionRecord,
    ExecutionSummary,
    FileRecord,
    RunRecord,
    file_record,
    run_record,
)
from egress.db.paging import Page, fetch_page
from egress.db.schedules import advance_schedules
from egress.db.tables import executions, extraction_configurations, runs
from egress.db.transitions import (
    NewRun,
    RequestTicket,
    cancel_run,
    enqueue_run,
    enqueue_runs,
    insert_request,
    lock_workspace,
)
from egress.domain.clock import Clock, new_id, utcnow
from egress.domain.errors import Conflict, Invalid, NotFound
from egress.domain.identity import SYSTEM, Subject, subject_from_json, subject_json
from egress.domain.paging import PageRequest
from egress.domain.schedules import Slot, SlotTaken
from egress.domain.spec import ExecutionSpec
from egress.domain.status import (
    RunKind,
    RunStatus,
    cancel_blocker,
    rerun_blocker,
)

# Two triggers racing for the "one active run" slot: the loser retries as ON_HOLD.
_INSERT_RETRIES = 5
IDEMPOTENCY_WINDOW = timedelta(hours=24)
CHANGED_WHILE_CANCELLING = "the run changed status while cancelling; look again and retry"

__all__ = [  # the records live in execution_records; importers keep this one module
    "ExecutionRecord",
    "ExecutionRepo",
    "ExecutionSummary",
    "FileRecord",
    "NewExecution",
    "RunRecord",
    "file_record",
    "run_record",
]


@dataclass(frozen=True)
class NewExecution:
    """An execution to create: the configuration and options frozen into ``spec``."""

    configuration_id: str
    spec: ExecutionSpec
    trigger: str
    triggered_by: Subject = SYSTEM
    slot: Slot | None = None  # what a schedule or backfill fires (once)
    idempotency_key: str | None = None
    request_hash: str | None = None
    audit: AuditHook | None = None  # its entry, written in its transaction
    request: RequestTicket | None = None  # run 1 is pollable as this request (seed 002)


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
        slot: Slot | None = None,
        audit: AuditHook | None = None,
        request: RequestTicket | None = None,
    ) -> tuple[ExecutionRecord, bool]:
        """Create an execution with run 1 queued; returns (execution, created).

        The same idempotency key with the same request hash within 24 h returns the earlier
        execution instead of creating one; with a different hash it is refused. A ``slot``
        (schedule or backfill) is fired once: its schedule advances in this transaction and
        its key is unique; ``SlotTaken`` when another scheduler was first. A ``request``
        ticket makes run 1 pollable as that request (seed 002).
        """
        new = NewExecution(
            configuration_id,
            spec,
            trigger,
            triggered_by,
            slot,
            idempotency_key,
            request_hash,
            audit,
            request,
        )
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
                        created = self._fire(conn, workspace_id, [new], now)[0]
                        if created is None:
                            assert slot is not None  # only a slot's guard refuses
                            raise SlotTaken(slot.schedule_id)
                        exec_id = created
            except IntegrityError:
                if slot is not None and self._slot_fired(configuration_id, slot):
                    raise SlotTaken(slot.schedule_id) from None
                continue  # lost a race for the active slot or the key: look again
            # Read after commit: a second connection inside the transaction would wait on
            # SQLite's write lock held by this very request.
            return self.get(workspace_id, configuration_id, exec_id), earlier is None
        raise Conflict("too many concurrent triggers of this configuration; try again")

    def create_many(
        self, workspace_id: str, new: list[NewExecution], now: datetime
    ) -> list[str | None] | None:
        """Create executions of one workspace in one transaction (what a scheduler round fires
        at once): each one's id, or None for a slot another scheduler fired first. None for
        all when a unique key refused one of them: the caller creates them one by one."""
        try:
            with self._engine.begin() as conn:
                return self._fire(conn, workspace_id, new, now)
        except IntegrityError:
            return None

    def _fire(
        self, conn: Connection, workspace_id: str, new: list[NewExecution], now: datetime
    ) -> list[str | None]:
        """Insert executions, each with run 1 queued, after advancing each slot's schedule;
        None for a slot whose schedule another scheduler advanced first."""
        if any(n.slot is not None for n in new):
            # The workspace's queue lock before any schedule row: the order every firing
            # takes, so two schedulers firing overlapping slots never deadlock.
            lock_workspace(conn, workspace_id)
        slots = [n.slot for n in new if n.slot is not None]
        advanced = advance_schedules(conn, slots, now) if slots else set()
        out: list[str | None] = []
        rows: list[dict[str, Any]] = []
        for n in new:
            if n.slot is not None and n.slot not in advanced:
                out.append(None)
                continue
            rows.append(
                {
                    "id": new_id(),
                    "workspace_id": workspace_id,
                    "configuration_id": n.configuration_id,
                    "parameters": n.spec.to_json(),
                    "trigger": n.trigger,
                    "idempotency_key": n.idempotency_key,
                    "request_hash": n.request_hash,
                    "created_at": now,
                    "triggered_by": subject_json(n.triggered_by),
                    "schedule_id": n.slot.schedule_id if n.slot else None,
                    "due_at": n.slot.due_at if n.slot else None,
                    "window_end": n.slot.window_end if n.slot else None,
                    "catch_up": n.slot.catch_up if n.slot else None,
                }
            )
            out.append(rows[-1]["id"])
        if not rows:
            return out
        conn.execute(executions.insert(), rows)
        queued = [NewRun(r["configuration_id"], r["id"], 1) for r in rows]
        run_ids = iter(enqueue_runs(conn, workspace_id, queued, now, self._max_runs))
        for n, exec_id in zip(new, out, strict=True):
            run_id = next(run_ids) if exec_id is not None else None
            if n.request is not None and run_id is not None:
                insert_request(conn, workspace_id, n.request, RunKind.EXTRACT, run_id, now)
        with batched(conn):
            for n, exec_id in zip(new, out, strict=True):
                if exec_id is not None and n.audit is not None:  # a taken slot: none
                    n.audit(conn, exec_id, {})
        return out

    def _slot_fired(self, configuration_id: str, slot: Slot) -> bool:
        with self._reads.connect() as conn:
            found = conn.execute(
                sa.select(executions.c.id).where(
                    executions.c.configuration_id == configuration_id,
                    executions.c.schedule_id == slot.schedule_id,
                    executions.c.due_at == slot.due_at,
                )
            ).first()
        return found is not None

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
        audit: AuditHook | None = None,
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
                        run = self._queue_rerun(
                            conn,
                            workspace_id,
                            configuration_id,
                            execution_id,
                            now,
                            idempotency_key,
                        )
                        if audit is not None:
                            audit(conn, execution_id, {"run": run})
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
    ) -> int:
        """Queue the next run; returns its number."""
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
        return int(latest.run_number) + 1

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
            rows = conn.execute(DETAILS_QUERY, keys).all()
        if not rows:  # an execution always has its run 1: no row, no execution
            raise NotFound(f"execution {execution_id} not found")
        run_rows: dict[str, Row[Any]] = {}
        files: dict[str, list[FileRecord]] = defaultdict(list)
        for r in rows:
            run_rows.setdefault(r.id, r)
            if r.file_sub_extract_id is not None:  # the outer join's row of a run without files
                files[r.id].append(file_record(r, "file_"))
        head = rows[0]
        return ExecutionRecord(
            id=execution_id,
            workspace_id=workspace_id,
            configuration_id=configuration_id,
            spec=ExecutionSpec.from_json(head.parameters),
            trigger=head.execution_trigger,
            created_at=head.execution_created_at,
            runs=[run_record(r, files[run_id]) for run_id, r in run_rows.items()],
            triggered_by=subject_from_json(head.execution_triggered_by),
            schedule_id=head.execution_schedule_id,
            due_at=head.execution_due_at,
            catch_up=head.execution_catch_up,
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
        self,
        workspace_id: str,
        configuration_id: str,
        execution_id: str,
        now: datetime,
        audit: AuditHook | None = None,
    ) -> ExecutionRecord:
        """PENDING/ON_HOLD runs end at once; an IN_PROGRESS run is asked to stop."""
        execution = self.get(workspace_id, configuration_id, execution_id)
        latest = execution.latest
        blocker = cancel_blocker(latest.status)
        if blocker:
            raise Conflict(blocker)
        with self._engine.begin() as conn:
            if not cancel_run(conn, latest.id, latest.status, workspace_id, now, self._max_runs):
                raise Conflict(CHANGED_WHILE_CANCELLING)
            if audit is not None:
                audit(conn, execution_id, {"run": latest.run_number})
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
