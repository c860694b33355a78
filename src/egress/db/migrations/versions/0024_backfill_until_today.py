"""The backfill runs up to today, a moving end: ``extraction_configurations.backfill_to`` (the
day the backfill was set, which used to end it) goes.

Revision ID: 0024
Revises: 0027 (written against 0019; re-chained after merging main)
Create Date: 2026-12-01

A backfill set before this upgrade continues past the day it was set: each day that passes
adds the window that covers it.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0026"  # the chain as merged (written against 0019)
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("extraction_configurations", schema=None) as batch_op:
        batch_op.drop_column("backfill_to")


def downgrade() -> None:
    # The end is not known any more: today's, as a backfill set now would have had.
    op.add_column(
        "extraction_configurations", sa.Column("backfill_to", sa.String(10), nullable=True)
    )
    op.execute(
        sa.text(
            "UPDATE extraction_configurations SET backfill_to = :today "
            "WHERE sync_historical_data IS NOT NULL"
        ).bindparams(today=date.today().isoformat())
    )
