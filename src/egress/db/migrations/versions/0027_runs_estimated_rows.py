"""Runs: ``estimated_rows``, the source's estimate of the rows a run reads (PostgreSQL's
planner, MySQL's optimizer), shown as ``progress.estimatedTotal`` so that a client can show a
percentage and an ETA.

Revision ID: 0027
Revises: 0019
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("estimated_rows", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("estimated_rows")
