"""Templates: discovered (one per source table, kept in sync) and custom ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from egress.db.engine import Repository
from egress.db.paging import Page, fetch_page
from egress.db.tables import connections, extraction_configurations, templates
from egress.domain.catalog import ColumnInfo, TableInfo, TableRef
from egress.domain.clock import new_id
from egress.domain.errors import Conflict, NotFound
from egress.domain.paging import PageRequest
from egress.domain.spec import TemplateSnapshot

DISCOVERED = "discovered"
CUSTOM = "custom"


@dataclass(frozen=True)
class TemplateRecord:
    id: str
    workspace_id: str
    connection_id: str
    name: str
    kind: str
    source_table: str  # the table's shown name; "" for a SQL template
    fields: list[ColumnInfo]
    primary_key: list[str]
    cursor_field: str | None
    date_field: str | None
    created_at: datetime
    query: str | None = None  # a SQL template's SELECT, read instead of a table
    source: TableRef | None = None  # the table read, as parts; None for a SQL template
    csv_null_values: list[str] | None = None  # a CSV template's own; None: the connection's

    def field(self, name: str) -> ColumnInfo | None:
        return next((f for f in self.fields if f.name == name), None)

    def snapshot(self) -> TemplateSnapshot:
        """The frozen form stored on every execution."""
        return TemplateSnapshot(
            id=self.id,
            name=self.name,
            source_table=self.source_table,
            source=self.source,
            fields=list(self.fields),
            primary_key=self.primary_key,
            cursor_field=self.cursor_field,
            date_field=self.date_field,
            query=self.query,
            csv_null_values=self.csv_null_values,
        )


def _record(row: Row[Any]) -> TemplateRecord:
    return TemplateRecord(
        id=row.id,
        workspace_id=row.workspace_id,
        connection_id=row.connection_id,
        name=row.name,
        kind=row.kind,
        source_table=row.source_table,
        fields=[ColumnInfo(**f) for f in row.fields],
        primary_key=list(row.primary_key),
        cursor_field=row.cursor_field,
        date_field=row.date_field,
        created_at=row.created_at,
        query=row.query,
        source=None if row.source_name is None else TableRef(row.source_schema, row.source_name),
        csv_null_values=row.csv_null_values,
    )


class TemplateRepo(Repository):
    def sync_discovered(
        self, workspace_id: str, connection_id: str, tables: list[TableInfo]
    ) -> None:
        """Make the discovered templates match the source's tables; keep ids stable. A table
        is matched by its parts, and its template named by their unambiguous shown form."""
        now = self._clock()
        with self._engine.begin() as conn:
            existing: dict[TableRef, str] = {}
            custom: set[str] = set()
            for r in conn.execute(
                sa.select(
                    templates.c.id,
                    templates.c.name,
                    templates.c.kind,
                    templates.c.source_schema,
                    templates.c.source_name,
                ).where(
                    templates.c.workspace_id == workspace_id,
                    templates.c.connection_id == connection_id,
                )
            ):
                if r.kind == DISCOVERED:
                    existing[TableRef(r.source_schema, r.source_name)] = r.id
                else:
                    custom.add(r.name)
            for table in tables:
                if table.error is not None:
                    continue  # unreadable: listed in the catalog, nothing to extract yet
                if table.qualified_name in custom:
                    # A custom template took this name before the table appeared: it wins,
                    # the table stays reachable through the catalog and a renamed template.
                    continue
                values = {
                    "name": table.qualified_name,
                    "source_table": table.qualified_name,
                    "fields": [c.as_dict() for c in table.columns],
                    "primary_key": table.primary_key,
                    "updated_at": now,
                }
                if table.ref in existing:
                    conn.execute(
                        templates.update()
                        .where(templates.c.id == existing.pop(table.ref))
                        .values(**values)
                    )
                else:
                    conn.execute(
                        templates.insert().values(
                            id=new_id(),
                            workspace_id=workspace_id,
                            connection_id=connection_id,
                            kind=DISCOVERED,
                            source_schema=table.ref.schema,
                            source_name=table.ref.name,
                            cursor_field=None,
                            date_field=None,
                            created_at=now,
                            **values,
                        )
                    )
            # Tables that vanished: drop their templates unless a configuration still uses one.
            in_use = sa.select(extraction_configurations.c.template_id)
            conn.execute(
                templates.delete().where(
                    templates.c.id.in_(list(existing.values())), templates.c.id.not_in(in_use)
                )
            )

    def create_custom(
        self,
        workspace_id: str,
        connection_id: str,
        name: str,
        source: TableRef | None,
        fields: list[ColumnInfo],
        primary_key: list[str],
        cursor_field: str | None,
        date_field: str | None,
        query: str | None = None,
        csv_null_values: list[str] | None = None,
    ) -> TemplateRecord:
        """A custom template over the table ``source``, or over ``query`` (``source`` None)."""
        now = self._clock()
        tpl_id = new_id()
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    templates.insert().values(
                        id=tpl_id,
                        workspace_id=workspace_id,
                        connection_id=connection_id,
                        name=name,
                        kind=CUSTOM,
                        source_table=source.display if source else "",
                        source_schema=source.schema if source else None,
                        source_name=source.name if source else None,
                        fields=[f.as_dict() for f in fields],
                        primary_key=primary_key,
                        cursor_field=cursor_field,
                        date_field=date_field,
                        query=query,
                        csv_null_values=csv_null_values,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"a template named {name!r} already exists on this connection") from exc
        return self.get(workspace_id, tpl_id)

    def get(self, workspace_id: str, tpl_id: str) -> TemplateRecord:
        with self._reads.connect() as conn:
            row = conn.execute(
                sa.select(templates).where(
                    templates.c.workspace_id == workspace_id, templates.c.id == tpl_id
                )
            ).one_or_none()
        if row is None:
            raise NotFound(f"template {tpl_id} not found")
        return _record(row)

    def list_page(
        self,
        workspace_id: str,
        connection_id: str | None,
        page: PageRequest,
        connection_type: str | None = None,
    ) -> Page[TemplateRecord]:
        query = sa.select(templates).where(templates.c.workspace_id == workspace_id)
        if connection_id is not None:
            query = query.where(templates.c.connection_id == connection_id)
        if connection_type is not None:
            of_type = sa.select(connections.c.id).where(
                connections.c.workspace_id == workspace_id, connections.c.type == connection_type
            )
            query = query.where(templates.c.connection_id.in_(of_type))
        query = query.order_by(templates.c.kind.desc(), templates.c.name, templates.c.id)
        with self._reads.connect() as conn:
            rows, total = fetch_page(conn, query, page)
        return Page([_record(r) for r in rows], total, page)
