"""The audit trail: every service that changes something, serves a file or signs someone in
records it here; admins read it back.

A change that is a metadata write (connections, configurations, runs, tokens, users, clients)
is recorded in its own transaction: the service hands its repository a ``hook`` that writes
the entry there. Anything else (downloads, sign-ins) calls ``record`` right after the fact: a
crash in between can lose that entry, but the trail never shows something that did not
happen. Sign-ins (bearer tokens, the OAuth sign-in page and token endpoint, through
``services.sign_ins``) call ``record`` with the workspace, actor and source address they know.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from egress.db.audit import AuditHook, AuditRepo, append_event
from egress.db.paging import Page
from egress.domain.audit import (
    ACTIONS,
    ANONYMOUS,
    SUCCESS,
    AuditEvent,
    AuditFilter,
    AuditObject,
)
from egress.domain.clock import Clock
from egress.domain.errors import Invalid
from egress.domain.identity import Principal, Subject, require_admin
from egress.domain.paging import PageRequest

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


class AuditService:
    def __init__(self, repo: AuditRepo, clock: Clock) -> None:
        self._repo = repo
        self._clock = clock

    def record(
        self,
        action: str,
        obj: AuditObject | None = None,
        *,
        by: Principal | None = None,
        workspace_id: str | None = None,
        actor: Subject | None = None,
        source_address: str | None = None,
        outcome: str = SUCCESS,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one entry. ``by`` (the authenticated caller) gives the workspace, the actor
        (``Principal.actor``: the user behind a personal token) and the source address; without
        it pass them yourself (a failed sign-in: ``workspace_id`` None when the credential
        names none, ``actor`` None for an unknown credential). ``action`` is one of
        ``domain.audit.ACTIONS``; ``outcome`` ``success`` or ``failure``."""
        self._repo.append(
            self._event(action, obj, by, workspace_id, actor, source_address, outcome, detail)
        )

    def hook(
        self,
        action: str,
        object_type: str,
        *,
        by: Principal | None,
        workspace_id: str,
        detail: dict[str, Any] | None = None,
        actor: Subject | None = None,
    ) -> AuditHook:
        """The entry of a change, for a repository to write in the change's own transaction
        (it gives the object's id and any detail only it knows). Same fields as ``record``."""

        def write(conn: Connection, object_id: str, more: dict[str, Any]) -> None:
            obj = AuditObject(object_type, object_id)
            details = {**(detail or {}), **more}
            append_event(
                conn, self._event(action, obj, by, workspace_id, actor, None, SUCCESS, details)
            )

        return write

    def _event(
        self,
        action: str,
        obj: AuditObject | None,
        by: Principal | None,
        workspace_id: str | None,
        actor: Subject | None,
        source_address: str | None,
        outcome: str,
        detail: dict[str, Any] | None,
    ) -> AuditEvent:
        assert action in ACTIONS, action
        if by is not None:
            workspace_id = workspace_id or by.workspace_id
            actor = actor or by.actor
            source_address = source_address or by.source_address
        return AuditEvent(
            workspace_id=workspace_id,
            at=self._clock(),
            actor=actor or ANONYMOUS,
            action=action,
            object=obj,
            outcome=outcome,
            source_address=source_address,
            detail=detail or {},
        )

    def list_page(
        self, principal: Principal, where: AuditFilter, page: PageRequest
    ) -> Page[AuditEvent]:
        """The caller's workspace's entries, newest first; admins only."""
        require_admin(principal.role, "reading the audit log")
        if where.action is not None and where.action not in ACTIONS:
            raise Invalid.at(
                ("query", "action"), f"unknown action; actions are: {', '.join(ACTIONS)}"
            )
        where = replace(where, start=_utc(where.start, "from"), end=_utc(where.end, "to"))
        if where.start and where.end and where.start >= where.end:
            raise Invalid.at(("query", "to"), "must be later than 'from'")
        return self._repo.list_page(principal.workspace_id, where, page)


def _utc(value: datetime | None, name: str) -> datetime | None:
    """A filter time in UTC; one without a zone, or with no UTC equivalent, is a 422."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise Invalid.at(("query", name), "must name its time zone, e.g. 2026-12-01T00:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise Invalid.at(("query", name), "has no UTC equivalent") from None
