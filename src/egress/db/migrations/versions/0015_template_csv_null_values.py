"""Templates: ``csv_null_values``, a custom CSV template's own NULL spellings (``csvNullValues``),
used instead of its connection's list when inferring its types and reading its rows.

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-01

Existing templates have none (NULL): they keep reading with their connection's list.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
# Helpers branch from 0013 in parallel: the integrator re-points this at merge.
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("csv_null_values", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.drop_column("csv_null_values")
