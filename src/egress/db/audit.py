"""The audit trail's table: append and read. There is deliberately no update or delete."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from egress.db.engine import Repository
from egress.db.paging import Page, fetch_page
from egress.db.tables import audit_events
from egress.domain.audit import AuditEvent, AuditFilter, AuditObject
from egress.domain.identity import Subject
from egress.domain.paging import PageRequest

# Writes a change's audit entry inside the change's own transaction: called by a repository
# with that transaction, the object's id and what only the repository knows (e.g. a run number).
AuditHook = Callable[[Connection, str, dict[str, Any]], None]


_BATCH = "egress_audit_batch"


def append_event(conn: Connection, event: AuditEvent) -> None:
    """Append ``event`` in the caller's transaction (so it commits with the change); inside
    ``batched`` it is written with the others at the end."""
    row = {
        "workspace_id": event.workspace_id,
        "at": event.at,
        "actor_type": event.actor.type,
        "actor_id": event.actor.id or None,
        "actor_name": event.actor.name[:200] or None,
        "action": event.action,
        "object_type": event.object.type if event.object else None,
        "object_id": event.object.id if event.object else None,
        "outcome": event.outcome,
        "source_address": event.source_address,
        "detail": event.detail or None,
    }
    batch = conn.info.get(_BATCH)
    if batch is not None:
        batch.append(row)
    else:
        conn.execute(audit_events.insert().values(**row))


@contextmanager
def batched(conn: Connection) -> Iterator[None]:
    """The entries appended on ``conn`` within, written in one statement at the end (a
    scheduler round's executions: one round trip instead of one each)."""
    rows: list[dict[str, Any]] = []
    conn.info[_BATCH] = rows
    try:
        yield
    finally:
        del conn.info[_BATCH]
    if rows:
        conn.execute(audit_events.insert(), rows)


def _event(row: Row[Any]) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        workspace_id=row.workspace_id,
        at=row.at,
        actor=Subject(row.actor_type, row.actor_id or "", row.actor_name or ""),
        action=row.action,
        object=AuditObject(row.object_type, row.object_id) if row.object_type else None,
        outcome=row.outcome,
        source_address=row.source_address,
        detail=dict(row.detail or {}),
    )


class AuditRepo(Repository):
    def append(self, event: AuditEvent) -> None:
        with self._engine.begin() as conn:
            append_event(conn, event)

    def list_page(
        self, workspace_id: str, where: AuditFilter, page: PageRequest
    ) -> Page[AuditEvent]:
        """A workspace's entries, newest first."""
        c = audit_events.c
        conditions: list[sa.ColumnElement[bool]] = [c.workspace_id == workspace_id]
        if where.actor is not None:
            conditions.append(c.actor_id == where.actor)
        if where.action is not None:
            conditions.append(c.action == where.action)
        if where.start is not None:
            conditions.append(c.at >= where.start)
        if where.end is not None:
            conditions.append(c.at < where.end)
        query = sa.select(audit_events).where(*conditions).order_by(c.at.desc(), c.id.desc())
        with self._reads.connect() as conn:
            rows, total = fetch_page(conn, query, page)
        return Page([_event(r) for r in rows], total, page)
