"""Pieces of the run queue's statements: the lease fence, the row estimate's values, the
claim's choice and what it returns (built once: see ``transitions._transition_statement``)."""

from __future__ import annotations

import sqlalchemy as sa

from egress.db.tables import executions, runs
from egress.domain.status import RunStatus


def leased(run_id: str, lease_token: str) -> list[sa.ColumnElement[bool]]:
    """The lease fence: the run is still IN_PROGRESS under this very lease."""
    return [
        runs.c.id == run_id,
        runs.c.lease_token == lease_token,
        runs.c.status == RunStatus.IN_PROGRESS.value,
    ]


def estimate_values(rows: int | None) -> dict[str, int]:
    """The source's row estimate to record (``RunControl.estimated_rows``), when known: it goes
    with the first heartbeat or the outcome, not in a transaction of its own."""
    return {} if rows is None else {"estimated_rows": rows}


# The oldest PENDING run, as of the bound parameter ``claim_now``. A queued run with a cancel
# request is the reaper's to cancel, never to run; one waiting for a retry runs when its
# backoff is over.
OLDEST_PENDING = (
    sa.select(runs.c.id)
    .where(
        runs.c.status == RunStatus.PENDING.value,
        runs.c.cancel_requested.is_(False),
        sa.or_(
            runs.c.not_before.is_(None),
            runs.c.not_before <= sa.bindparam("claim_now", type_=runs.c.not_before.type),
        ),
    )
    .order_by(runs.c.queued_at, runs.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)

# What the claim's UPDATE returns besides the run's id and workspace, the claimed
# extraction's parameters included (a scalar subquery: a round trip less).
CLAIM_RETURNING = (
    runs.c.execution_id,
    runs.c.configuration_id,
    runs.c.run_number,
    runs.c.kind,
    runs.c.attempt,
    sa.select(executions.c.parameters)
    .where(executions.c.id == runs.c.execution_id)
    .correlate(runs)
    .scalar_subquery()
    .label("parameters"),
)
