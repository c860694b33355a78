"""Bulk export (seed 003): ``requests`` (a request id the client polls, mapped to its run), the
run's ``owner`` with the partial unique index allowing one active export job per user, and
``runs.execution_id`` nullable (an export job has no execution; its request holds its spec).

Revision ID: 0019
Revises: 0016 (written against 0013; re-chained after merging main)
Create Date: 2026-12-01

Making ``execution_id`` nullable rebuilds ``runs`` on SQLite; ``env.py`` turns SQLite's foreign
keys off around migrations (the rebuild drops the table others reference) and checks them after.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_ACTIVE = sa.text("status IN ('PENDING', 'ON_HOLD', 'IN_PROGRESS')")


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=200), nullable=True))
        batch_op.alter_column("execution_id", existing_type=sa.String(length=36), nullable=True)
    op.create_index(
        "uq_runs_one_active_per_owner",
        "runs",
        ["owner"],
        unique=True,
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    )
    op.create_table(
        "requests",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("object", sa.String(length=400), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_requests_workspace_id_workspaces")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_requests_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_requests")),
        sa.UniqueConstraint("run_id", name=op.f("uq_requests_run_id")),
    )
    op.create_index(
        "ix_requests_owner_created", "requests", ["workspace_id", "owner", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_requests_owner_created", table_name="requests")
    op.drop_table("requests")
    op.drop_index("uq_runs_one_active_per_owner", table_name="runs")
    op.execute("DELETE FROM run_events WHERE run_id IN (SELECT id FROM runs WHERE kind = 'export')")
    op.execute(
        "DELETE FROM pending_publications "
        "WHERE run_id IN (SELECT id FROM runs WHERE kind = 'export')"
    )
    op.execute("DELETE FROM run_files WHERE run_id IN (SELECT id FROM runs WHERE kind = 'export')")
    op.execute("DELETE FROM runs WHERE kind = 'export'")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.alter_column("execution_id", existing_type=sa.String(length=36), nullable=False)
        batch_op.drop_column("owner")
