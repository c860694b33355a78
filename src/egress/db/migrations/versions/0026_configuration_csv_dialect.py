"""Configurations: ``csv_dialect`` (``csvDialect``), how a CSV file renders values: NULL is
Egress's own rendering, ``postgres`` PostgreSQL's text rendering through plain ``COPY``.

Revision ID: 0025
Revises: 0019
Create Date: 2026-12-01

Existing configurations have none (NULL): they keep Egress's rendering.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
# Helpers branch from 0019 in parallel: the integrator re-points this at merge.
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("extraction_configurations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("csv_dialect", sa.String(20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("extraction_configurations", schema=None) as batch_op:
        batch_op.drop_column("csv_dialect")
