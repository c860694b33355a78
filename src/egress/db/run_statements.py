"""Pieces of the run queue's statements: the lease fence, the row estimate's values, the
claimed execution's parameters."""

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


# The claimed extraction's parameters, returned by the claim's UPDATE: a round trip less.
CLAIM_PARAMETERS = (
    sa.select(executions.c.parameters)
    .where(executions.c.id == runs.c.execution_id)
    .correlate(runs)
    .scalar_subquery()
    .label("parameters")
)
