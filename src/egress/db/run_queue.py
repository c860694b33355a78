"""The run queue: what workers do with runs (claim, heartbeat, fence, publish intent, finish,
release, fail an attempt) and the reaper.

A run row *is* the job. Every status change goes through ``transitions.transition`` (the
domain's table, a conditional UPDATE, an outbox row); a worker's changes are fenced by its
lease token, so a worker that lost its lease commits nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from functools import partial

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from egress.db import leftovers
from egress.db.changes import announced
from egress.db.engine import Repository
from egress.db.run_records import (
    Attempt,
    ClaimedRun,
    Heartbeat,
    Leftover,
    Outcome,
    ReapCounts,
    SourceConnection,
)
from egress.db.run_statements import (
    CLAIM_RETURNING,
    DROP_PENDING,
    FENCE,
    LEASE_EXPIRY,
    LEASED,
    OLDEST_PENDING,
    PUBLISHING,
    PUBLISHING_FENCED,
    ended_attempt_values,
    estimate_values,
    fence_params,
    held_keys,
)
from egress.db.slot_connection import SlotConnection
from egress.db.tables import executions, pending_publications, requests, runs
from egress.db.transitions import (
    FinishedRun,
    cancel_may_undo,
    cancel_requested,
    notify,
    release_next,
    transition,
)
from egress.db.watermarks import (
    IncrementalState,
    advance_snapshot,
    advance_watermark,
    read_state,
    set_state,
)
from egress.domain.clock import Clock, new_id, utcnow
from egress.domain.export import ExportSpec
from egress.domain.incremental import Observation
from egress.domain.spec import ExecutionSpec, FrozenWindow
from egress.domain.status import RunKind, RunStatus, after_lost_attempt

# Re-exported: the runner reads the incremental state from the queue, and callers import the
# queue's records from here.
__all__ = ["ClaimedRun", "Heartbeat", "IncrementalState", "Leftover", "Outcome", "ReapCounts"]


class _LeaseLost(Exception):
    """Rolls back an outcome whose lease was lost before it could be recorded."""


class RunQueue(Repository):
    def __init__(
        self, engine: Engine, clock: Clock = utcnow, max_runs_per_workspace: int | None = None
    ) -> None:
        super().__init__(engine, clock)
        # A slot's transactions, on the connection it keeps from claim to finish (``kept``).
        self._slot = SlotConnection(engine)
        # Runs of a workspace active at once; held runs are released only below it.
        self._max_runs = max_runs_per_workspace

    def kept_connection(self) -> AbstractContextManager[None]:
        """Within the block, this thread's writes share one connection (``slot_connection``)."""
        return self._slot.kept()

    def claim(self, process_id: str, lease: timedelta, now: datetime) -> ClaimedRun | None:
        """Take the oldest PENDING run, if any, under a fresh lease."""
        token = secrets.token_hex(16)
        with self._slot.begin(autocommit=True) as conn:
            row = transition(
                conn,
                OLDEST_PENDING,
                RunStatus.PENDING,
                RunStatus.IN_PROGRESS,
                now,
                {
                    "lease_token": token,
                    "process_id": process_id,
                    "lease_expires_at": now + lease,
                    "started_at": now,
                    "processed": 0,
                    "progress_at": now,
                    "not_before": None,
                },
                returning=CLAIM_RETURNING,
                params={"claim_now": now},
            )
            if row is None:
                return None
            export: ExportSpec | None = None
            connection: SourceConnection | None = None
            if row.execution_id is None:  # an export job: its request holds what it does
                request = conn.execute(
                    sa.select(requests.c.id, requests.c.spec).where(requests.c.run_id == row.id)
                ).one()
                export = ExportSpec.from_json(request.spec)
                spec, execution_id = export.execution, request.id
            else:
                spec = ExecutionSpec.from_json(row.parameters)
                execution_id = row.execution_id
                if row.connection_type is not None:
                    connection = SourceConnection(
                        row.connection_type, dict(row.connection_settings), row.connection_secrets
                    )
        return ClaimedRun(
            run_id=row.id,
            workspace_id=row.workspace_id,
            execution_id=execution_id,
            configuration_id=row.configuration_id,
            run_number=row.run_number,
            kind=RunKind(row.kind),
            attempt=row.attempt,
            lease_token=token,
            process_id=process_id,
            started_at=now,
            spec=spec,
            export=export,
            connection=connection,
        )

    def heartbeat(
        self,
        run_id: str,
        lease_token: str,
        processed: int,
        lease: timedelta,
        now: datetime,
        estimated_rows: int | None = None,
    ) -> Heartbeat:
        with self._engine.begin() as conn:
            row = conn.execute(
                runs.update()
                .where(*LEASED)
                .values(lease_expires_at=now + lease, processed=processed, progress_at=now)
                .values(estimate_values(estimated_rows))
                .returning(runs.c.cancel_requested),
                fence_params(run_id, lease_token),
            ).one_or_none()
        if row is None:
            return Heartbeat(alive=False, cancel_requested=False)
        return Heartbeat(alive=True, cancel_requested=bool(row.cancel_requested))

    def mark_publishing(self, claimed: ClaimedRun, keys: list[str]) -> bool:
        """Record the keys (at least one) about to be published, fenced; False when the lease
        is gone."""
        try:
            with self._slot.begin(autocommit=True) as conn:
                if conn.dialect.name != "postgresql":
                    self._fence(conn, claimed)
                    conn.execute(
                        PUBLISHING, [{"run_id": claimed.run_id, "storage_key": k} for k in keys]
                    )
                    return True
                fenced = fence_params(claimed.run_id, claimed.lease_token)
                if not conn.execute(PUBLISHING_FENCED, {**fenced, "keys": keys}).all():
                    raise _LeaseLost
                announced(conn)
        except _LeaseLost:
            return False
        return True

    def incremental_state(self, configuration_id: str) -> IncrementalState:
        with self._reads.connect() as conn:
            return read_state(conn, configuration_id)

    def freeze_window(
        self,
        claimed: ClaimedRun,
        window: FrozenWindow,
        observations: list[Observation] | None = None,
    ) -> bool:
        """Store the incremental window on the execution once, fenced; re-runs reuse it. A
        lagged window records the configuration's observations (with the run's own) with it."""
        try:
            with self._slot.begin() as conn:
                self._fence(conn, claimed)
                if observations is not None:
                    set_state(
                        conn,
                        claimed.configuration_id,
                        observations=[o.to_json() for o in observations],
                    )
                stored = conn.execute(
                    sa.select(executions.c.parameters).where(
                        executions.c.id == claimed.execution_id
                    )
                ).scalar_one()
                params = dict(stored)
                params.setdefault("window", window.to_json())
                conn.execute(
                    executions.update()
                    .where(executions.c.id == claimed.execution_id)
                    .values(parameters=params)
                )
        except _LeaseLost:
            return False
        return True

    def _fence(self, conn: Connection, claimed: ClaimedRun) -> None:
        """Lock the run row if this worker still holds its lease; else raise _LeaseLost."""
        held = conn.execute(FENCE, fence_params(claimed.run_id, claimed.lease_token)).first()
        if held is None:
            raise _LeaseLost

    def holds_lease(self, claimed: ClaimedRun, now: datetime) -> bool:
        with self._reads.connect() as conn:
            expires = conn.execute(
                LEASE_EXPIRY, fence_params(claimed.run_id, claimed.lease_token)
            ).scalar_one_or_none()
        return expires is not None and expires > now

    def unpublish(
        self, run_id: str, lease_token: str, keys: list[str], delete: Callable[[str], None]
    ) -> None:
        """``delete`` the keys an attempt published without recording them, but none that a
        later attempt (or another run) has claimed since: the reaper frees a lost attempt's
        keys, so the attempt replacing it may publish under the same names while the lost one
        is frozen. Checked and deleted under the run row's lock, which ``mark_publishing``
        takes before any publication, so no key can be claimed between the two."""
        if not keys:
            return
        with self._slot.begin() as conn:
            holder = conn.execute(
                sa.select(runs.c.lease_token).where(runs.c.id == run_id).with_for_update()
            ).scalar_one_or_none()
            claimed: set[str] = set()
            if holder != lease_token:  # the lease is lost: its pending keys are not its own
                claimed = set(conn.execute(held_keys(keys)).scalars())
            for key in keys:
                if key not in claimed:
                    delete(key)

    def finish(
        self, claimed: ClaimedRun, outcome: Outcome, now: datetime, *, claiming_next: bool = True
    ) -> RunStatus | None:
        """Record the outcome, fenced by the lease token: the status recorded (CANCELLED when
        a cancel requested meanwhile undoes it), None when the lease was lost first.
        ``claiming_next``: the caller's slot claims again right after (``release_next``)."""
        try:
            with self._slot.begin() as conn:
                # The cancel is read only when it stopped the outcome's UPDATE (issue 19).
                undoable = cancel_may_undo(outcome)
                record = partial(self._record_outcome, conn, claimed, claiming_next=claiming_next)
                try:
                    record(outcome, now, undoable)
                except _LeaseLost:
                    if not undoable or not cancel_requested(
                        conn, claimed.run_id, claimed.lease_token
                    ):
                        raise
                    outcome = outcome.cancelled()
                    record(outcome, now)
        except _LeaseLost:
            return None
        return outcome.status

    def _record_outcome(
        self,
        conn: Connection,
        claimed: ClaimedRun,
        outcome: Outcome,
        now: datetime,
        unless_cancelled: bool = False,
        *,
        claiming_next: bool,
    ) -> None:
        """Record ``outcome`` (``unless_cancelled``: unless a cancel was requested); raises
        _LeaseLost, before anything else is written, when the run's row did not match."""
        recorded = transition(
            conn,
            claimed.run_id,
            RunStatus.IN_PROGRESS,
            outcome.status,
            now,
            {
                "completed_at": now,
                "record_count": outcome.record_count,
                "processed": (
                    outcome.record_count if outcome.processed is None else outcome.processed
                ),
                "progress_at": now,
                "error_message": outcome.error_message,
                "lease_token": None,
                "lease_expires_at": None,
                "manifest_key": outcome.manifest_key,
                "warnings": outcome.warnings or None,
                "retryable": outcome.retryable,
                **estimate_values(outcome.estimated_rows),
            },
            lease_token=claimed.lease_token,
            unless_cancelled=unless_cancelled,
        )
        if recorded is None:
            raise _LeaseLost
        if outcome.result is not None:
            conn.execute(
                requests.update()
                .where(requests.c.run_id == claimed.run_id)
                .values(result=outcome.result)
            )
        if outcome.window is not None and outcome.window.snapshot is not None:
            advance_snapshot(conn, claimed.configuration_id, outcome.window)
        elif outcome.window is not None and outcome.window.high is not None:
            advance_watermark(conn, claimed.configuration_id, outcome.window)
        files = [
            {
                "id": new_id(),
                "workspace_id": claimed.workspace_id,
                "run_id": claimed.run_id,
                "created_at": now,
                **f.__dict__,
            }
            for f in outcome.files
        ]
        # Its files, and the keys it was publishing, go with the workspace's lock.
        finished = FinishedRun(claimed.run_id, files)
        release_next(
            conn, claimed.workspace_id, now, self._max_runs, finished, claiming_next=claiming_next
        )

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
        with self._slot.begin() as conn:
            fenced = fence_params(claimed.run_id, claimed.lease_token)
            row = conn.execute(
                sa.select(runs.c.id, runs.c.attempt, runs.c.cancel_requested)
                .where(*LEASED)
                .with_for_update(),
                fenced,
            ).one_or_none()
            if row is None:
                return None
            # The attempt removed what it was publishing; the next one may choose those keys.
            conn.execute(DROP_PENDING, fenced)
            return self._end_attempt(
                conn,
                Attempt(
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
        run: Attempt,
        now: datetime,
        max_attempts: int | None,
        reason: str | None,
        not_before: datetime | None = None,
    ) -> RunStatus | None:
        """End an attempt that has no outcome of its own: one conditional UPDATE, fenced by
        the attempt's lease, to where ``after_lost_attempt`` says."""
        target = after_lost_attempt(run.attempt, max_attempts, run.cancel_requested)
        values = ended_attempt_values(run.attempt, target, now, max_attempts, reason, not_before)
        ended = transition(
            conn,
            run.run_id,
            RunStatus.IN_PROGRESS,
            target,
            now,
            values,
            lease_token=run.lease_token,
        )
        if ended is None:
            return None
        if target is RunStatus.PENDING:
            notify(conn)
        else:
            release_next(conn, ended.workspace_id, now, self._max_runs)
        return target

    def reap(self, now: datetime, max_attempts: int) -> ReapCounts:
        """Runs whose lease expired: back to PENDING (attempt + 1), FAILED after the last,
        CANCELLED when their cancel was requested; what each attempt left in storage is
        recorded in ``storage_leftovers`` for deleting. Queued runs with a cancel request (left by
        an older version) end CANCELLED too: a cancelled run never runs again."""
        requeued = failed = cancelled = 0
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
                # Its temporary files and those keys, kept until the store has deleted them.
                leftovers.record(conn, Leftover(r.id, r.workspace_id, r.lease_token, keys), now)
                attempt = Attempt(
                    r.id, r.lease_token, r.attempt, bool(r.cancel_requested), r.configuration_id
                )
                target = self._end_attempt(conn, attempt, now, max_attempts, None)
                requeued += target is RunStatus.PENDING
                failed += target is RunStatus.FAILED
                cancelled += target is RunStatus.CANCELLED
            cancelled += self._cancel_queued(conn, now)
        return ReapCounts(requeued=requeued, failed=failed, cancelled=cancelled)

    def _cancel_queued(self, conn: Connection, now: datetime) -> int:
        queued = conn.execute(
            sa.select(runs.c.id, runs.c.status, runs.c.workspace_id)
            .where(
                runs.c.status.in_([RunStatus.PENDING.value, RunStatus.ON_HOLD.value]),
                runs.c.cancel_requested.is_(True),
            )
            .with_for_update(skip_locked=True)
        ).all()
        for r in queued:
            before = RunStatus(r.status)
            changed = transition(
                conn, r.id, before, RunStatus.CANCELLED, now, {"completed_at": now}
            )
            if changed is not None and before is RunStatus.PENDING:
                release_next(conn, r.workspace_id, now, self._max_runs)
        return len(queued)
