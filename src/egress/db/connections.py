"""Connections: source systems with settings and encrypted, write-only secrets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from egress.db.audit import AuditHook
from egress.db.engine import Repository
from egress.db.paging import Page, fetch_page
from egress.db.tables import connections, extraction_configurations, templates
from egress.domain.clock import new_id
from egress.domain.errors import Conflict, NotFound
from egress.domain.paging import PageRequest


@dataclass(frozen=True)
class ConnectionRecord:
    id: str
    workspace_id: str
    name: str
    type: str
    settings: dict[str, Any]
    sealed_secrets: str | None
    created_at: datetime
    updated_at: datetime


def _record(row: Row[Any]) -> ConnectionRecord:
    return ConnectionRecord(
        id=row.id,
        workspace_id=row.workspace_id,
        name=row.name,
        type=row.type,
        settings=dict(row.settings),
        sealed_secrets=row.secrets,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# Built once: a worker reads its run's connection on every run.
_ONE = sa.select(connections).where(
    connections.c.workspace_id == sa.bindparam("workspace", type_=connections.c.workspace_id.type),
    connections.c.id == sa.bindparam("connection", type_=connections.c.id.type),
)


def _name_taken(name: str) -> Conflict:
    return Conflict(f"a connection named {name!r} already exists in this workspace")


class ConnectionRepo(Repository):
    def sealed_after(self, after_id: str, limit: int) -> list[tuple[str, str]]:
        """``(id, sealed secrets)`` of every workspace's connections with secrets, by id after
        ``after_id``: a key rotation walks them a page at a time."""
        with self._reads.connect() as conn:
            rows = conn.execute(
                sa.select(connections.c.id, connections.c.secrets)
                .where(connections.c.secrets.is_not(None), connections.c.id > after_id)
                .order_by(connections.c.id)
                .limit(limit)
            ).all()
        return [(r.id, r.secrets) for r in rows]

    def reseal(self, connection_id: str, before: str, after: str) -> bool:
        """Replace the sealed secrets if they are still ``before``: a change made meanwhile
        (sealed under the new key already) wins."""
        with self._engine.begin() as conn:
            changed = conn.execute(
                connections.update()
                .where(connections.c.id == connection_id, connections.c.secrets == before)
                .values(secrets=after)
            ).rowcount
        return bool(changed)

    def create(
        self,
        workspace_id: str,
        name: str,
        type_: str,
        settings: dict[str, Any],
        sealed_secrets: str | None,
        audit: AuditHook | None = None,
    ) -> ConnectionRecord:
        now = self._clock()
        conn_id = new_id()
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    connections.insert().values(
                        id=conn_id,
                        workspace_id=workspace_id,
                        name=name,
                        type=type_,
                        settings=settings,
                        secrets=sealed_secrets,
                        created_at=now,
                        updated_at=now,
                    )
                )
                if audit is not None:
                    audit(conn, conn_id, {})
        except IntegrityError as exc:
            raise _name_taken(name) from exc
        return self.get(workspace_id, conn_id)

    def get(self, workspace_id: str, conn_id: str) -> ConnectionRecord:
        with self._reads.connect() as conn:
            row = conn.execute(
                _ONE, {"workspace": workspace_id, "connection": conn_id}
            ).one_or_none()
        if row is None:
            raise NotFound(f"connection {conn_id} not found")
        return _record(row)

    def list_page(
        self, workspace_id: str, page: PageRequest, type_: str | None = None
    ) -> Page[ConnectionRecord]:
        query = sa.select(connections).where(connections.c.workspace_id == workspace_id)
        if type_ is not None:
            query = query.where(connections.c.type == type_)
        query = query.order_by(connections.c.created_at, connections.c.id)
        with self._reads.connect() as conn:
            rows, total = fetch_page(conn, query, page)
        return Page([_record(r) for r in rows], total, page)

    def sealed_secrets(self) -> list[tuple[str, str]]:
        """(connection id, sealed secrets) of every connection with secrets, all workspaces:
        what a process's key ring must open (start-up check)."""
        with self._reads.connect() as conn:
            rows = conn.execute(
                sa.select(connections.c.id, connections.c.secrets)
                .where(connections.c.secrets.is_not(None), connections.c.secrets != "")
                .order_by(connections.c.created_at, connections.c.id)
            ).all()
        return [(r.id, r.secrets) for r in rows]

    def update(
        self, workspace_id: str, conn_id: str, audit: AuditHook | None = None, **values: Any
    ) -> ConnectionRecord:
        self.get(workspace_id, conn_id)
        if "sealed_secrets" in values:
            values["secrets"] = values.pop("sealed_secrets")
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    connections.update()
                    .where(connections.c.workspace_id == workspace_id, connections.c.id == conn_id)
                    .values(updated_at=self._clock(), **values)
                )
                if audit is not None:
                    audit(conn, conn_id, {})
        except IntegrityError as exc:
            raise _name_taken(str(values.get("name"))) from exc
        return self.get(workspace_id, conn_id)

    def delete(self, workspace_id: str, conn_id: str, audit: AuditHook | None = None) -> None:
        self.get(workspace_id, conn_id)
        with self._engine.begin() as conn:
            used_by = (
                conn.execute(
                    sa.select(extraction_configurations.c.name)
                    .join(templates, templates.c.id == extraction_configurations.c.template_id)
                    .where(
                        templates.c.connection_id == conn_id,
                        extraction_configurations.c.workspace_id == workspace_id,
                    )
                    .order_by(extraction_configurations.c.name)
                )
                .scalars()
                .all()
            )
            if used_by:
                names = ", ".join(used_by)
                raise Conflict(
                    f"the connection is used by extraction configurations: {names}; "
                    "delete them first"
                )
            conn.execute(
                templates.delete().where(
                    templates.c.workspace_id == workspace_id, templates.c.connection_id == conn_id
                )
            )
            conn.execute(
                connections.delete().where(
                    connections.c.workspace_id == workspace_id, connections.c.id == conn_id
                )
            )
            if audit is not None:
                audit(conn, conn_id, {})
