"""Run options: configuration defaults (filter, extractOnlyNew, date range) and the
incremental watermark.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("extraction_configurations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("filter", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("extract_only_new", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("date_from", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("date_to", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("watermark", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("extraction_configurations", schema=None) as batch_op:
        batch_op.drop_column("watermark")
        batch_op.drop_column("date_to")
        batch_op.drop_column("date_from")
        batch_op.drop_column("extract_only_new")
        batch_op.drop_column("filter")
