"""The one way a run's status changes: a guarded transition that appends to the outbox.

Every change is one conditional UPDATE on the expected status (plus the caller's fence, e.g.
the lease token), so two actors can never both win; the domain transition table is checked
first, and the change's ``run_events`` row is written in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from egress.db.tables import run_events, runs
from egress.domain.clock import new_id
from egress.domain.status import (
    ACTIVE,
    RunKind,
    RunStatus,
    check_transition,
)

RUNS_CHANNEL = "egress_runs"
_ACTIVE_VALUES = [s.value for s in ACTIVE]


def notify(conn: Connection) -> None:
    """Wake listening workers when this transaction commits (PostgreSQL only; SQLite polls)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": RUNS_CHANNEL})


def _event(
    conn: Connection,
    workspace_id: str,
    run_id: str,
    before: RunStatus | None,
    after: RunStatus,
    now: datetime,
) -> None:
    conn.execute(
        run_events.insert().values(
            workspace_id=workspace_id,
            run_id=run_id,
            from_status=before.value if before else None,
            to_status=after.value,
            at=now,
        )
    )


def transition(
    conn: Connection,
    run_id: Any,
    before: RunStatus,
    after: RunStatus,
    now: datetime,
    values: dict[str, Any] | None = None,
    where: Sequence[sa.ColumnElement[bool]] = (),
    returning: Sequence[sa.ColumnElement[Any]] = (),
) -> Row[Any] | None:
    """Move run ``run_id`` (an id, or a scalar subquery choosing one) from ``before`` to
    ``after``, setting ``values``, if it is still ``before`` and matches ``where``. The changed
    row (its id, workspace and ``returning``), or None when nothing matched."""
    check_transition(before, after)
    row = conn.execute(
        runs.update()
        .where(runs.c.id == run_id, runs.c.status == before.value, *where)
        .values(status=after.value, **(values or {}))
        .returning(runs.c.id, runs.c.workspace_id, *returning)
    ).one_or_none()
    if row is not None:
        _event(conn, row.workspace_id, row.id, before, after, now)
    return row


def enqueue_run(
    conn: Connection,
    workspace_id: str,
    configuration_id: str,
    execution_id: str | None,
    run_number: int,
    now: datetime,
    kind: RunKind = RunKind.EXTRACT,
    idempotency_key: str | None = None,
    owner: str | None = None,
) -> str:
    """Create a run: PENDING, or ON_HOLD behind the configuration's active or held runs;
    returns its id. An ``owner``'s second active run breaks a unique index (IntegrityError)."""
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
    run_id = new_id()
    conn.execute(
        runs.insert().values(
            id=run_id,
            workspace_id=workspace_id,
            execution_id=execution_id,
            configuration_id=configuration_id,
            run_number=run_number,
            kind=kind.value,
            status=status.value,
            attempt=1,
            queued_at=now,
            cancel_requested=False,
            idempotency_key=idempotency_key,
            owner=owner,
        )
    )
    _event(conn, workspace_id, run_id, None, status, now)
    if held and not busy:
        release_next(conn, configuration_id, now)  # heal a queue left without an active run
    elif status is RunStatus.PENDING:
        notify(conn)
    return run_id


def cancel_run(
    conn: Connection, run_id: str, status: RunStatus, configuration_id: str, now: datetime
) -> bool:
    """PENDING/ON_HOLD runs end CANCELLED at once; an IN_PROGRESS run is asked to stop (its
    worker ends it CANCELLED). False when the run changed status meanwhile."""
    if status is RunStatus.IN_PROGRESS:
        # Not a status change: its worker stops and ends it CANCELLED.
        changed = conn.execute(
            runs.update()
            .where(runs.c.id == run_id, runs.c.status == RunStatus.IN_PROGRESS.value)
            .values(cancel_requested=True)
        ).rowcount
        return bool(changed)
    ended = transition(conn, run_id, status, RunStatus.CANCELLED, now, {"completed_at": now})
    if ended is not None and status is RunStatus.PENDING:
        release_next(conn, configuration_id, now)
    return ended is not None


def release_next(conn: Connection, configuration_id: str, now: datetime) -> None:
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
    if transition(conn, oldest_held, RunStatus.ON_HOLD, RunStatus.PENDING, now) is not None:
        notify(conn)
