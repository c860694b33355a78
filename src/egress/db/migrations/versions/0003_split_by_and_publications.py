"""Split-by on configurations, a manifest per run, and pending publications per run.

A split run publishes many files, so the single runs.publishing_key becomes a table of the
keys a worker is about to publish (the reaper deletes them if the worker dies mid-way).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("extraction_configurations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("split_by", sa.String(length=200), nullable=True))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("manifest_key", sa.String(length=1000), nullable=True))
        batch_op.drop_column("publishing_key")
    op.create_table(
        "pending_publications",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("storage_key", sa.String(length=1000), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_pending_publications_run_id_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "storage_key", name=op.f("pk_pending_publications")),
    )


def downgrade() -> None:
    op.drop_table("pending_publications")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("publishing_key", sa.String(length=1000), nullable=True))
        batch_op.drop_column("manifest_key")
    with op.batch_alter_table("extraction_configurations", schema=None) as batch_op:
        batch_op.drop_column("split_by")
