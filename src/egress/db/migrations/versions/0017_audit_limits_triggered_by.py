"""The audit trail (``audit_events``, append-only), token buckets of the fair-use limits
(``rate_buckets``), who triggered an execution (``executions.triggered_by``) and why a run
waits (``runs.hold_reason``).

Revision ID: 0017
Revises: 0013
Create Date: 2026-12-01

Existing executions have no ``triggered_by`` (NULL): they are shown as triggered by the
system, since nothing recorded the caller then. Existing held runs have no reason (NULL):
they wait behind their configuration's active run, the only hold there was.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
# Chained by the integrator after the other migrations of this round.
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        # NULL: a failed sign-in whose credential names no workspace.
        sa.Column("workspace_id", sa.String(36), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_type", sa.String(20), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("actor_name", sa.String(200), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(40), nullable=True),
        sa.Column("object_id", sa.String(200), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("source_address", sa.String(64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_audit_events_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_workspace_at", "audit_events", ["workspace_id", "at"])
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_buckets")),
    )
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("triggered_by", sa.JSON(), nullable=True))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hold_reason", sa.String(400), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("hold_reason")
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_column("triggered_by")
    op.drop_table("rate_buckets")
    op.drop_index("ix_audit_events_workspace_at", table_name="audit_events")
    op.drop_table("audit_events")
