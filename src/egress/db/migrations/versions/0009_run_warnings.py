"""Runs: ``warnings``, what a completed run noticed but did not fail for (a file of a folder
with a column the others lack, or without one they have).

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-01

Existing runs have none (NULL, shown as an empty list).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("warnings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("warnings")
