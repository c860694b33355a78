"""A not-before time per membership: a role change or a re-invitation in one workspace ends the
user's access tokens of that workspace only (``users.not_before`` stays for what is the user's
everywhere: a password reset).

Revision ID: 0022
Revises: 0019
Create Date: 2026-12-01

Existing memberships have none (NULL): their tokens stay valid.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_column("not_before")
