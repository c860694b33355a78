"""Runs: ``not_before`` (a run waiting for a retry is not claimed before it) and
``retryable`` (whether the failure that ended an attempt was transient).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04

Existing runs have neither (NULL): claimable at once, and no failure classified.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
# 0012 (the run queue's outbox) lands beside this one: whichever merges second re-points here.
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("retryable", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("retryable")
        batch_op.drop_column("not_before")
