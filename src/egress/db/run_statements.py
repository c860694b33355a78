"""Pieces of the run queue's statements: the lease fence, the row estimate's values, an
attempt's end without an outcome, the claim's choice and what it returns (built once: see
``transitions._transition_statement``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from egress.db.changes import ANNOUNCEMENT
from egress.db.tables import connections, executions, pending_publications, run_files, runs
from egress.domain.status import RunStatus

# The lease fence, over the bound parameters ``fenced_run`` and ``fenced_lease``
# (``fence_params``): the run is still IN_PROGRESS under this very lease.
LEASED = (
    runs.c.id == sa.bindparam("fenced_run", type_=runs.c.id.type),
    runs.c.lease_token == sa.bindparam("fenced_lease", type_=runs.c.lease_token.type),
    runs.c.status == RunStatus.IN_PROGRESS.value,
)
# Statements a run's worker makes on every run, built once (building them cost more than
# running them; see ``transitions._transition_statement``):
# the run row locked while the lease holds,
FENCE = sa.select(runs.c.id).where(*LEASED).with_for_update()
# when the lease expires,
LEASE_EXPIRY = sa.select(runs.c.lease_expires_at).where(*LEASED)
# whether a cancel was asked for meanwhile (``transitions.cancel_requested``),
CANCEL_REQUESTED = sa.select(runs.c.cancel_requested).where(*LEASED[:2])
# and the keys it was about to publish, dropped once recorded or given up.
DROP_PENDING = pending_publications.delete().where(
    pending_publications.c.run_id == sa.bindparam("fenced_run", type_=runs.c.id.type)
)


# The keys about to be published (after ``FENCE``).
PUBLISHING = pending_publications.insert()


def _fenced_publishing() -> sa.Insert:
    """PostgreSQL's ``FENCE`` and ``PUBLISHING`` as one statement: the keys (the bound array
    ``keys``) are inserted only beside the run row the lease still holds, locked by the
    statement to the commit as ``FENCE`` locks it, and a row comes back per key (none: the
    lease is gone). The read caches' NOTIFY rides on it. One round trip less a run."""
    fenced = sa.select(runs.c.id).where(*LEASED).with_for_update().cte("fenced")
    keys = (
        sa.func.unnest(sa.bindparam("keys", type_=ARRAY(sa.String())))
        .table_valued("key")
        .render_derived(name="keys")
    )
    rows = sa.select(fenced.c.id, keys.c.key).select_from(fenced.join(keys, sa.true()))
    return PUBLISHING.from_select(["run_id", "storage_key"], rows).returning(ANNOUNCEMENT)


PUBLISHING_FENCED = _fenced_publishing()


def _recording_files() -> sa.Insert:
    """A finished run's files as one INSERT whatever their number, on PostgreSQL: the rows are
    the bound JSON array ``files`` (an object per row, keyed by column), each value typed as its
    column by ``json_populate_recordset``, so the text never changes and the statement can ride
    as a CTE on the finish's lock (``transitions.lock_workspace``): one round trip less a run."""
    names = [c.name for c in run_files.c]
    rows = sa.func.json_populate_recordset(
        sa.literal_column(f"NULL::{run_files.name}"),
        sa.cast(sa.bindparam("files", type_=sa.Text()), sa.JSON),
    ).alias("recorded_rows")
    columns: list[sa.ColumnElement[Any]] = [sa.literal_column(f"recorded_rows.{n}") for n in names]
    return run_files.insert().from_select(names, sa.select(*columns).select_from(rows))


RECORDING_FILES = _recording_files()


def held_keys(keys: list[str]) -> sa.CompoundSelect[Any]:
    """Which of ``keys`` a run holds: pending publication, a recorded file or a manifest."""
    return (
        sa.select(pending_publications.c.storage_key)
        .where(pending_publications.c.storage_key.in_(keys))
        .union_all(
            sa.select(run_files.c.storage_key).where(run_files.c.storage_key.in_(keys)),
            sa.select(runs.c.manifest_key).where(runs.c.manifest_key.in_(keys)),
        )
    )


def fence_params(run_id: str, lease_token: str) -> dict[str, str]:
    """The bound parameters of ``LEASED``."""
    return {"fenced_run": run_id, "fenced_lease": lease_token}


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

# The claimed extraction's connection, by the id frozen in its parameters.
_FROZEN_CONNECTION = (
    sa.select(executions.c.parameters["connection"]["id"].as_string())
    .where(executions.c.id == runs.c.execution_id)
    .correlate(runs)
    .scalar_subquery()
)


def _connection(column: sa.Column[Any]) -> sa.Label[Any]:
    return (
        sa.select(column)
        .where(
            connections.c.id == _FROZEN_CONNECTION,
            connections.c.workspace_id == runs.c.workspace_id,
        )
        .correlate(runs)
        .scalar_subquery()
        .label(f"connection_{column.name}")
    )


# What the claim's UPDATE returns besides the run's id and workspace, the claimed
# extraction's parameters and connection included (scalar subqueries: round trips less).
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
    _connection(connections.c.type),
    _connection(connections.c.settings),
    _connection(connections.c.secrets),
)


def ended_attempt_values(
    attempt: int,
    target: RunStatus,
    now: datetime,
    max_attempts: int | None,
    reason: str | None,
    not_before: datetime | None,
) -> dict[str, Any]:
    """What ending ``attempt`` without an outcome of its own writes on its run, moving it to
    ``target`` (``after_lost_attempt``): another attempt, or its end."""
    values: dict[str, Any] = {"lease_token": None, "lease_expires_at": None}
    if target is RunStatus.PENDING:
        values |= {
            "attempt": attempt + 1,
            "processed": None,
            "estimated_rows": None,
            "not_before": not_before,
        }
    else:
        values["completed_at"] = now
    if target is RunStatus.CANCELLED:
        values |= {"error_message": None, "retryable": None}
    elif reason is not None:
        values["error_message"] = f"{reason}; attempt {attempt} of {max_attempts}"
    elif target is RunStatus.FAILED:
        values["error_message"] = f"worker lost after {attempt} attempts"
    if values.get("error_message"):
        values["retryable"] = True  # every attempt lost this way may succeed another time
    return values
