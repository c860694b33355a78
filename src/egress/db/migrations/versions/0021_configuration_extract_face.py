"""Extraction configurations: what the seed-001 extracts face stores with a configuration.

``account`` — the account (schema, MySQL database, folder) the configuration reads;
``conditions`` — its structured filter (``[{field, operator, value}]``) as the client gave it,
compiled into ``filter``; ``additional_params`` — free-form JSON kept and shown back;
``system_columns`` — its data-table loads add ``account_id``, ``account_name`` and
``__insert_date``.

Revision ID: 0021
Revises: 0016
Create Date: 2026-12-01

Existing configurations have none of them (NULL): they read and load as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
# Helpers branch in parallel and the integrator re-points this at merge; it follows main's
# head (0016) so that this branch migrates to one head and its tests run.
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("extraction_configurations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account", sa.String(400), nullable=True))
        batch_op.add_column(sa.Column("conditions", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("additional_params", sa.JSON(), nullable=True))
        # Nullable (NULL: false), because a server default that is an expression makes
        # SQLite's batch mode rebuild the table, which executions reference.
        batch_op.add_column(sa.Column("system_columns", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("extraction_configurations", schema=None) as batch_op:
        batch_op.drop_column("system_columns")
        batch_op.drop_column("additional_params")
        batch_op.drop_column("conditions")
        batch_op.drop_column("account")
