"""Templates keep the table they read as parts (schema, name), never a joined string.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26

Before, ``source_table`` held "schema.table" and every read split it at the first dot, so a
schema with a dot in its name read another table. Existing rows (and the template snapshots
frozen on executions, which re-runs read) get the parts that first-dot split gave: each keeps
reading exactly what it read before. Discovery then matches tables by their parts and renames
each discovered template to the unambiguous form (``"x.y".z``). A files connection's template
reads a path: its name part is the whole path, with no schema.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_connections = sa.table("connections", sa.column("id", sa.String), sa.column("type", sa.String))
_templates = sa.table(
    "templates",
    sa.column("id", sa.String),
    sa.column("connection_id", sa.String),
    sa.column("source_table", sa.String),
    sa.column("query", sa.Text),
    sa.column("source_schema", sa.String),
    sa.column("source_name", sa.String),
)
_executions = sa.table("executions", sa.column("id", sa.String), sa.column("parameters", sa.JSON))


def _parts(connection_type: str, source_table: str) -> tuple[str | None, str]:
    if connection_type == "files":
        return None, source_table
    schema, _, name = source_table.partition(".")
    return schema, name


def upgrade() -> None:
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_schema", sa.String(400), nullable=True))
        batch_op.add_column(sa.Column("source_name", sa.String(1000), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_templates.c.id, _templates.c.source_table, _connections.c.type)
        .join(_connections, _connections.c.id == _templates.c.connection_id)
        .where(_templates.c.query.is_(None))
    ).all()
    for row in rows:
        schema, name = _parts(row.type, row.source_table)
        bind.execute(
            _templates.update()
            .where(_templates.c.id == row.id)
            .values(source_schema=schema, source_name=name)
        )
    for run in bind.execute(sa.select(_executions.c.id, _executions.c.parameters)).all():
        params: dict[str, Any] = dict(run.parameters)
        template = dict(params.get("template") or {})
        if template.get("query") is not None or "sourceName" in template:
            continue
        schema, name = _parts(params["connection"]["type"], template["sourceTable"])
        params["template"] = {**template, "sourceSchema": schema, "sourceName": name}
        bind.execute(
            _executions.update().where(_executions.c.id == run.id).values(parameters=params)
        )


def downgrade() -> None:
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.drop_column("source_name")
        batch_op.drop_column("source_schema")
