"""Users, their memberships of workspaces, and OAuth clients (the metadata side only).

A user is one email across workspaces; what they may do in one is their membership's role.
Every read that an API caller triggers is scoped by the caller's workspace: another
workspace's user or client is indistinguishable from a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from egress.db.audit import AuditHook
from egress.db.engine import Repository
from egress.db.paging import Page, fetch_page
from egress.db.tables import memberships, oauth_clients, users
from egress.domain.clock import new_id
from egress.domain.errors import Conflict, NotFound
from egress.domain.paging import PageRequest


@dataclass(frozen=True)
class MemberRecord:
    """A user as one workspace sees them."""

    id: str
    email: str
    role: str
    workspace_id: str
    has_password: bool
    created_at: datetime


@dataclass(frozen=True)
class UserCredentials:
    id: str
    email: str
    password_hash: str | None
    not_before: datetime | None


@dataclass(frozen=True)
class ClientRecord:
    id: str
    workspace_id: str
    name: str
    role: str
    secret_hash: str | None
    key_id: str | None
    redirect_uris: list[str]
    created_at: datetime
    revoked_at: datetime | None


def _member(row: Row[Any]) -> MemberRecord:
    return MemberRecord(
        id=row.id,
        email=row.email,
        role=row.role,
        workspace_id=row.workspace_id,
        has_password=row.password_hash is not None,
        created_at=row.created_at,
    )


def _select_members(workspace_id: str) -> sa.Select[Any]:
    return (
        sa.select(
            users.c.id,
            users.c.email,
            users.c.password_hash,
            memberships.c.role,
            memberships.c.workspace_id,
            memberships.c.created_at,
        )
        .join(memberships, memberships.c.user_id == users.c.id)
        .where(memberships.c.workspace_id == workspace_id)
    )


class UserRepo(Repository):
    def add_member(
        self,
        workspace_id: str,
        email: str,
        role: str,
        password_hash: str | None,
        audit: AuditHook | None = None,
    ) -> MemberRecord:
        """A new user, or an existing one (by email) joining this workspace; an existing user
        keeps their password: an admin of one workspace never sets another's password.

        The membership's not-before is one second before the join's whole second: access
        tokens of an earlier membership (removed, now invited again) stay ended, while one
        signed in the join's own second counts (token times have whole seconds)."""
        now = self._clock()
        with self._engine.begin() as conn:
            found = conn.execute(
                sa.select(users.c.id).where(users.c.email == email)
            ).scalar_one_or_none()
            if found is None:
                user_id = new_id()
                conn.execute(
                    users.insert().values(
                        id=user_id, email=email, password_hash=password_hash, created_at=now
                    )
                )
            elif password_hash is not None:
                raise Conflict(f"{email} already has an account; they keep their own password")
            else:
                user_id = str(found)
                if self._role(conn, workspace_id, user_id) is not None:
                    raise Conflict(f"{email} is already a member of this workspace")
            conn.execute(
                memberships.insert().values(
                    workspace_id=workspace_id,
                    user_id=user_id,
                    role=role,
                    created_at=now,
                    not_before=now.replace(microsecond=0) - timedelta(seconds=1),
                )
            )
            if audit is not None:
                audit(conn, user_id, {})
            return self._get(conn, workspace_id, user_id)

    @staticmethod
    def _role(conn: Connection, workspace_id: str, user_id: str) -> str | None:
        found = conn.execute(
            sa.select(memberships.c.role).where(
                memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id
            )
        ).scalar_one_or_none()
        return None if found is None else str(found)

    @staticmethod
    def _get(conn: Connection, workspace_id: str, user_id: str) -> MemberRecord:
        row = conn.execute(_select_members(workspace_id).where(users.c.id == user_id)).one_or_none()
        if row is None:
            raise NotFound(f"user {user_id} not found")
        return _member(row)

    def get(self, workspace_id: str, user_id: str) -> MemberRecord:
        with self._reads.connect() as conn:
            return self._get(conn, workspace_id, user_id)

    def members(self, workspace_id: str, page: PageRequest) -> Page[MemberRecord]:
        with self._reads.connect() as conn:
            rows, total = fetch_page(
                conn, _select_members(workspace_id).order_by(users.c.email), page
            )
        return Page([_member(r) for r in rows], total, page)

    def update_member(
        self,
        workspace_id: str,
        user_id: str,
        role: str | None,
        password_hash: str | None,
        on_role: AuditHook | None = None,
        on_password: AuditHook | None = None,
    ) -> MemberRecord:
        """A new role ends the user's access tokens of this workspace, a new password their
        access tokens everywhere (``not_before``). ``on_role`` is called (with the old and new
        role) when the role changes, ``on_password`` when the password is set."""
        now = self._clock()
        with self._engine.begin() as conn:
            before = self._get(conn, workspace_id, user_id)
            if password_hash is not None:
                others = conn.execute(
                    sa.select(sa.func.count()).where(
                        memberships.c.user_id == user_id, memberships.c.workspace_id != workspace_id
                    )
                ).scalar_one()
                if others:
                    raise Conflict(
                        "this user belongs to other workspaces too; their password is not this "
                        "workspace's to set"
                    )
                conn.execute(
                    users.update()
                    .where(users.c.id == user_id)
                    .values(password_hash=password_hash, not_before=now)
                )
                if on_password is not None:
                    on_password(conn, user_id, {})
            if role is not None and role != before.role:
                conn.execute(
                    memberships.update()
                    .where(
                        memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id
                    )
                    .values(role=role, not_before=now)
                )
                if on_role is not None:
                    on_role(conn, user_id, {"from": before.role, "to": role})
            return self._get(conn, workspace_id, user_id)

    def remove_member(
        self, workspace_id: str, user_id: str, audit: AuditHook | None = None
    ) -> None:
        """Only this workspace's membership ends (its access tokens with it); the user's other
        workspaces keep theirs."""
        with self._engine.begin() as conn:
            member = self._get(conn, workspace_id, user_id)
            conn.execute(
                memberships.delete().where(
                    memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id
                )
            )
            if audit is not None:
                audit(conn, user_id, {"email": member.email, "role": member.role})

    def credentials(self, email: str) -> UserCredentials | None:
        with self._reads.connect() as conn:
            row = conn.execute(
                sa.select(
                    users.c.id, users.c.email, users.c.password_hash, users.c.not_before
                ).where(users.c.email == email)
            ).one_or_none()
        return None if row is None else UserCredentials(**row._asdict())

    def standing(self, workspace_id: str, user_id: str) -> tuple[str, datetime | None] | None:
        """(role in the workspace, not-before: the later of the user's and the membership's),
        or None when the user is not a member."""
        with self._reads.connect() as conn:
            row = conn.execute(
                sa.select(
                    memberships.c.role,
                    users.c.not_before,
                    memberships.c.not_before.label("member_not_before"),
                )
                .join(users, users.c.id == memberships.c.user_id)
                .where(memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id)
            ).one_or_none()
        if row is None:
            return None
        times = [t for t in (row.not_before, row.member_not_before) if t is not None]
        return str(row.role), max(times, default=None)


def _client(row: Row[Any]) -> ClientRecord:
    return ClientRecord(**row._asdict())


class ClientRepo(Repository):
    def add(
        self,
        workspace_id: str,
        name: str,
        role: str,
        secret: tuple[str, str] | None,
        redirect_uris: list[str],
        audit: AuditHook | None = None,
    ) -> ClientRecord:
        """``secret``: (key id, HMAC of the secret); None for a public client."""
        client_id = new_id()
        key_id, secret_hash = secret or (None, None)
        with self._engine.begin() as conn:
            conn.execute(
                oauth_clients.insert().values(
                    id=client_id,
                    workspace_id=workspace_id,
                    name=name,
                    role=role,
                    secret_hash=secret_hash,
                    key_id=key_id,
                    redirect_uris=redirect_uris,
                    created_at=self._clock(),
                )
            )
            if audit is not None:
                audit(conn, client_id, {})
            row = conn.execute(
                sa.select(oauth_clients).where(oauth_clients.c.id == client_id)
            ).one()
        return _client(row)

    def find(self, client_id: str) -> ClientRecord | None:
        """Any workspace's client: the token endpoint does not know the workspace yet."""
        with self._reads.connect() as conn:
            row = conn.execute(
                sa.select(oauth_clients).where(oauth_clients.c.id == client_id)
            ).one_or_none()
        return None if row is None else _client(row)

    def get(self, workspace_id: str, client_id: str) -> ClientRecord:
        found = self.find(client_id)
        if found is None or found.workspace_id != workspace_id:
            raise NotFound(f"client {client_id} not found")
        return found

    def list_page(self, workspace_id: str, page: PageRequest) -> Page[ClientRecord]:
        query = (
            sa.select(oauth_clients)
            .where(oauth_clients.c.workspace_id == workspace_id)
            .order_by(oauth_clients.c.created_at, oauth_clients.c.id)
        )
        with self._reads.connect() as conn:
            rows, total = fetch_page(conn, query, page)
        return Page([_client(r) for r in rows], total, page)

    def revoke(self, workspace_id: str, client_id: str, audit: AuditHook | None = None) -> None:
        """Revoke once: revoking again keeps the first time."""
        client = self.get(workspace_id, client_id)
        with self._engine.begin() as conn:
            conn.execute(
                oauth_clients.update()
                .where(oauth_clients.c.id == client_id, oauth_clients.c.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
            if audit is not None:
                audit(conn, client_id, {"name": client.name, "role": client.role})
