"""Pieces of ``transitions.release_next``'s statements: which held runs a freed slot may
release, and the look under the workspace's lock (built once: see
``transitions._transition_statement``)."""

from __future__ import annotations

import sqlalchemy as sa

from egress.db.tables import runs
from egress.domain.status import ACTIVE, RunStatus

ACTIVE_VALUES = [s.value for s in ACTIVE]
# The same as SQL literals: a list of values is an expanding parameter, which SQLAlchemy
# rewrites the statement's text for on every execution (~0.05 ms of CPU; two a finish).
_ACTIVE_LITERALS = [sa.literal_column(f"'{v}'", sa.String()) for v in ACTIVE_VALUES]


def active_count(workspace: sa.BindParameter[str]) -> sa.ScalarSelect[int]:
    return (
        sa.select(sa.func.count())
        .select_from(runs)
        .where(runs.c.workspace_id == workspace, runs.c.status.in_(_ACTIVE_LITERALS))
        .scalar_subquery()
    )


def _releasable_statement() -> sa.Select[tuple[str]]:
    """The workspace's (bound parameter ``held_workspace``) held runs that wait for nothing but a
    free slot: first of their configuration's held runs (FIFO per configuration), with no
    active run of it; oldest first. Built once: building it cost more than the rest of a
    finish's Python.

    A window numbers each configuration's held runs and the active configurations are one
    hashed list: correlated ``NOT EXISTS`` subqueries were planned as nested loops over every
    held run (the statistics of a table that just grew say it is empty), 300 to 390 ms a finish
    with 950 held, against 6 ms now (bench/README.md, drain)."""
    # No column of ``runs`` unaliased: used inside an UPDATE of it, nothing may correlate.
    candidates = runs.alias("candidates")
    active = runs.alias("active")
    held = (
        sa.select(
            candidates.c.id,
            candidates.c.configuration_id,
            candidates.c.queued_at,
            sa.func.row_number()
            .over(
                partition_by=candidates.c.configuration_id,
                order_by=(candidates.c.queued_at, candidates.c.id),
            )
            .label("place"),
        )
        .where(
            candidates.c.workspace_id == sa.bindparam("held_workspace"),
            candidates.c.status == RunStatus.ON_HOLD.value,
        )
        .subquery("held")
    )
    active_configurations = sa.select(active.c.configuration_id).where(
        active.c.status.in_(_ACTIVE_LITERALS), active.c.configuration_id.is_not(None)
    )
    # A run without a configuration (an export job) waits for no other run.
    unconfigured = held.c.configuration_id.is_(None)
    return (
        sa.select(held.c.id)
        .where(
            sa.or_(held.c.place == 1, unconfigured),
            sa.or_(unconfigured, held.c.configuration_id.not_in(active_configurations)),
        )
        .order_by(held.c.queued_at, held.c.id)
    )


RELEASABLE = _releasable_statement()


def _oldest_releasable_statement() -> sa.ScalarSelect[str]:
    """The first of ``RELEASABLE`` without its window: the workspace's oldest held run whose
    configuration has no active run. No held run of its configuration comes before it (that
    one would have no active run either, and be older), so it is also the first of its
    configuration's. The scan of the held runs in queue order stops at it, where the window
    sorted every held run on every finish of a full workspace (~5 ms with 950 held,
    bench/README.md, issue 19)."""
    candidates = runs.alias("candidates")
    active = runs.alias("active")
    active_configurations = sa.select(active.c.configuration_id).where(
        active.c.status.in_(_ACTIVE_LITERALS), active.c.configuration_id.is_not(None)
    )
    return (
        sa.select(candidates.c.id)
        .where(
            candidates.c.workspace_id == sa.bindparam("held_workspace"),
            candidates.c.status == RunStatus.ON_HOLD.value,
            sa.or_(
                candidates.c.configuration_id.is_(None),
                candidates.c.configuration_id.not_in(active_configurations),
            ),
        )
        .order_by(candidates.c.queued_at, candidates.c.id)
        .limit(1)
        .scalar_subquery()
    )


OLDEST_RELEASABLE = _oldest_releasable_statement()
# Under the workspace's lock, in one round trip: its active runs, and whether a held run says
# something else than the workspace's limit (most already say so, and finding the releasable
# ones sorts every held run, so relabelling waits for this plain look to find one).
LOOK = sa.select(
    active_count(sa.bindparam("held_workspace")).label("active"),
    sa.exists()
    .where(
        runs.c.workspace_id == sa.bindparam("held_workspace"),
        runs.c.status == RunStatus.ON_HOLD.value,
        runs.c.hold_reason.is_distinct_from(sa.bindparam("reason")),
    )
    .label("unlabelled"),
)
