"""Extraction configurations: ``parallelism`` — how many sessions read key ranges of one
snapshot (issue 19).

Revision ID: 0025
Revises: 0019
Create Date: 2026-12-01

Existing configurations have none (NULL): they read in one session, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("extraction_configurations", schema=None) as batch_op:
        # Nullable (NULL: 1), as a server default makes SQLite's batch mode rebuild the table.
        batch_op.add_column(sa.Column("parallelism", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("extraction_configurations", schema=None) as batch_op:
        batch_op.drop_column("parallelism")
