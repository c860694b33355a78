"""Incremental extraction that loses nothing under concurrent writers: the configuration's
safety lag and the state the next run builds on (the last PostgreSQL snapshot, or the cursor
maxima seen).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26

Existing configurations keep their watermark; their next PostgreSQL run starts tracking
snapshots, and every other source starts recording observations (nothing is delivered twice).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("extraction_configurations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("incremental_lag", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("incremental_state", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("extraction_configurations", schema=None) as batch_op:
        batch_op.drop_column("incremental_state")
        batch_op.drop_column("incremental_lag")
