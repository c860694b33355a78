"""``storage_leftovers``: what an attempt left in storage that could not be deleted when it
ended (its temporary prefix, the keys it was publishing). The reaper used to forget a dead
attempt's pending keys in the same transaction that ended the attempt, before deleting the
objects: with the store unreachable then, a published file set of an attempt that never
committed stayed in the bucket for good. The rows now stay until the objects are gone.

Revision ID: 0028
Revises: 0024
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_leftovers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("lease_token", sa.String(length=64), nullable=False),
        sa.Column("storage_keys", sa.JSON(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storage_leftovers")),
    )
    op.create_index("ix_storage_leftovers_next_try", "storage_leftovers", ["next_try_at"])


def downgrade() -> None:
    op.drop_index("ix_storage_leftovers_next_try", table_name="storage_leftovers")
    op.drop_table("storage_leftovers")
