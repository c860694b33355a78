"""Schedules and historical backfill (issue 16): the ``schedules`` table with the state the
scheduler advances; on configurations the schedules limit, the backfill range and window, and
``paused``; on executions the slot they fired for (``schedule_id``, ``due_at``, unique per
configuration) with its window end and catch-up flag.

Revision ID: 0018
Revises: 0013
Create Date: 2026-12-01

Existing configurations have no schedules, no backfill and are not paused; existing executions
have no slot (NULL, which the unique index does not compare).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: a batch would rebuild the tables on SQLite, and other tables
    # reference both.
    cfg = "extraction_configurations"
    op.add_column(cfg, sa.Column("schedules_limit", sa.Integer(), nullable=True))
    op.add_column(cfg, sa.Column("sync_historical_data", sa.String(10), nullable=True))
    op.add_column(
        cfg, sa.Column("backfill_window", sa.String(10), nullable=False, server_default="month")
    )
    op.add_column(cfg, sa.Column("backfill_to", sa.String(10), nullable=True))
    op.add_column(cfg, sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("configuration_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("date_window", sa.String(length=20), nullable=True),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gaps", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_schedules_workspace_id_workspaces")
        ),
        sa.ForeignKeyConstraint(
            ["configuration_id"],
            ["extraction_configurations.id"],
            name=op.f("fk_schedules_configuration_id_extraction_configurations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    op.create_index("ix_schedules_next_due_at", "schedules", ["next_due_at"])
    op.create_index("ix_schedules_configuration_id", "schedules", ["configuration_id"])
    # Columns and a unique index: a constraint would rebuild executions on SQLite.
    op.add_column("executions", sa.Column("schedule_id", sa.String(length=36), nullable=True))
    op.add_column("executions", sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("executions", sa.Column("window_end", sa.DateTime(timezone=True), nullable=True))
    op.add_column("executions", sa.Column("catch_up", sa.Boolean(), nullable=True))
    op.create_index(
        "uq_executions_slot",
        "executions",
        ["configuration_id", "schedule_id", "due_at"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_executions_slot", table_name="executions")
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_column("catch_up")
        batch_op.drop_column("window_end")
        batch_op.drop_column("due_at")
        batch_op.drop_column("schedule_id")
    op.drop_index("ix_schedules_configuration_id", table_name="schedules")
    op.drop_index("ix_schedules_next_due_at", table_name="schedules")
    op.drop_table("schedules")
    with op.batch_alter_table("extraction_configurations", schema=None) as batch_op:
        batch_op.drop_column("paused")
        batch_op.drop_column("backfill_to")
        batch_op.drop_column("backfill_window")
        batch_op.drop_column("sync_historical_data")
        batch_op.drop_column("schedules_limit")
