"""Data tables record the template they are loaded from.

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-01

A table is bound to the template of the configurations that load it when they all use one;
otherwise (or with none) it stays NULL and the next load records its template.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("data_tables") as batch:
        batch.add_column(sa.Column("template_id", sa.String(length=36), nullable=True))
    conn = op.get_bind()
    tables = sa.table(
        "data_tables",
        sa.column("id", sa.String()),
        sa.column("workspace_id", sa.String()),
        sa.column("name", sa.String()),
        sa.column("template_id", sa.String()),
    )
    configs = sa.table(
        "extraction_configurations",
        sa.column("workspace_id", sa.String()),
        sa.column("template_id", sa.String()),
        sa.column("destination", sa.JSON()),
    )
    loaders: dict[tuple[str, str | None], set[str]] = {}
    for row in conn.execute(
        sa.select(configs.c.workspace_id, configs.c.template_id, configs.c.destination)
    ):
        destination = row.destination or {}
        if destination.get("type") == "dataTable":
            key = (row.workspace_id, destination.get("dataTable"))
            loaders.setdefault(key, set()).add(row.template_id)
    for row in conn.execute(sa.select(tables.c.id, tables.c.workspace_id, tables.c.name)):
        templates = loaders.get((row.workspace_id, row.name), set())
        if len(templates) == 1:
            conn.execute(
                tables.update().where(tables.c.id == row.id).values(template_id=templates.pop())
            )


def downgrade() -> None:
    with op.batch_alter_table("data_tables") as batch:
        batch.drop_column("template_id")
