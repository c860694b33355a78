"""Workspaces (tenants) and API tokens. Tokens are stored only as hashes (see services.identity)."""

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
from egress.db.tables import api_tokens, workspaces
from egress.domain.clock import new_id
from egress.domain.errors import Conflict, NotFound
from egress.domain.paging import PageRequest


@dataclass(frozen=True)
class TokenRecord:
    """A token as stored: its hash and key id, never the token itself."""

    id: str
    workspace_id: str
    workspace_name: str
    name: str
    role: str  # admin | editor (domain.identity)
    key_id: str | None
    token_hash: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    # Personal tokens only: who it acts for (Subject fields); None for operator tokens.
    creator_type: str | None = None
    creator_id: str | None = None
    creator_name: str | None = None


_TOKEN_COLUMNS = (
    api_tokens.c.id,
    api_tokens.c.workspace_id,
    workspaces.c.name.label("workspace_name"),
    api_tokens.c.name,
    api_tokens.c.role,
    api_tokens.c.key_id,
    api_tokens.c.token_hash,
    api_tokens.c.created_at,
    api_tokens.c.expires_at,
    api_tokens.c.revoked_at,
    api_tokens.c.creator_type,
    api_tokens.c.creator_id,
    api_tokens.c.creator_name,
)


def _token(row: Row[Any]) -> TokenRecord:
    return TokenRecord(**row._asdict())


def _select_tokens() -> sa.Select[Any]:
    return sa.select(*_TOKEN_COLUMNS).join(workspaces, workspaces.c.id == api_tokens.c.workspace_id)


class WorkspaceRepo(Repository):
    def ensure_workspace(self, name: str) -> str:
        with self._engine.begin() as conn:
            found = conn.execute(
                sa.select(workspaces.c.id).where(workspaces.c.name == name)
            ).scalar_one_or_none()
            if found is not None:
                return str(found)
            ws_id = new_id()
            conn.execute(workspaces.insert().values(id=ws_id, name=name, created_at=self._clock()))
            return ws_id

    def create_workspace(self, name: str) -> str:
        ws_id = new_id()
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    workspaces.insert().values(id=ws_id, name=name, created_at=self._clock())
                )
        except IntegrityError as exc:
            raise Conflict(f"a workspace named {name!r} already exists") from exc
        return ws_id

    def _workspace(self, wanted: sa.Column[str], given: sa.Column[str], value: str) -> str | None:
        with self._reads.connect() as conn:
            found = conn.execute(sa.select(wanted).where(given == value)).scalar_one_or_none()
        return None if found is None else str(found)

    def workspace_id(self, name: str) -> str:
        found = self._workspace(workspaces.c.id, workspaces.c.name, name)
        if found is None:
            raise NotFound(f"no workspace named {name!r}")
        return found

    def workspace_name(self, workspace_id: str) -> str:
        found = self._workspace(workspaces.c.name, workspaces.c.id, workspace_id)
        if found is None:
            raise NotFound(f"no workspace with id {workspace_id!r}")
        return found

    def add_token(
        self,
        workspace_id: str,
        name: str,
        role: str,
        key_id: str,
        token_hash: str,
        created_at: datetime,
        expires_at: datetime | None,
        creator: tuple[str, str, str] | None = None,
        audit: AuditHook | None = None,
    ) -> TokenRecord:
        """``creator``: (type, id, name) of whom a personal token acts for."""
        token_id = new_id()
        made_by = dict(
            zip(("creator_type", "creator_id", "creator_name"), creator or (), strict=False)
        )
        with self._engine.begin() as conn:
            conn.execute(
                api_tokens.insert().values(
                    id=token_id,
                    workspace_id=workspace_id,
                    name=name,
                    role=role,
                    key_id=key_id,
                    token_hash=token_hash,
                    created_at=created_at,
                    expires_at=expires_at,
                    **made_by,
                )
            )
            if audit is not None:
                audit(conn, token_id, {})
            return _token(conn.execute(_select_tokens().where(api_tokens.c.id == token_id)).one())

    def find_token(self, hashes: dict[str, str | None]) -> TokenRecord | None:
        """The token stored as one of ``hashes`` (hash → the key id it was made with)."""
        with self._reads.connect() as conn:
            rows = conn.execute(
                _select_tokens().where(api_tokens.c.token_hash.in_(list(hashes)))
            ).all()
        # A hash only counts under the key it was computed with (NULL: legacy sha256).
        matches = [_token(r) for r in rows if hashes[r.token_hash] == r.key_id]
        return matches[0] if matches else None

    def rehash_token(self, token_id: str, old_hash: str, key_id: str, new_hash: str) -> None:
        """Store the token's hash under another key; a no-op if someone else already did."""
        with self._engine.begin() as conn:
            conn.execute(
                api_tokens.update()
                .where(api_tokens.c.id == token_id, api_tokens.c.token_hash == old_hash)
                .values(key_id=key_id, token_hash=new_hash)
            )

    def update_token(self, token_id: str, *, workspace_id: str, role: str, name: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                api_tokens.update()
                .where(api_tokens.c.id == token_id)
                .values(workspace_id=workspace_id, role=role, name=name)
            )

    def tokens(self, workspace_id: str | None = None) -> list[TokenRecord]:
        query = _select_tokens().order_by(workspaces.c.name, api_tokens.c.created_at)
        if workspace_id is not None:
            query = query.where(api_tokens.c.workspace_id == workspace_id)
        with self._reads.connect() as conn:
            return [_token(r) for r in conn.execute(query)]

    def tokens_page(
        self, workspace_id: str, creator: tuple[str, str] | None, page: PageRequest
    ) -> Page[TokenRecord]:
        """A workspace's tokens; with ``creator`` (type, id) only those acting for it."""
        query = (
            _select_tokens()
            .where(api_tokens.c.workspace_id == workspace_id)
            .order_by(api_tokens.c.created_at, api_tokens.c.id)
        )
        if creator is not None:
            query = query.where(
                api_tokens.c.creator_type == creator[0], api_tokens.c.creator_id == creator[1]
            )
        with self._reads.connect() as conn:
            rows, total = fetch_page(conn, query, page)
        return Page([_token(r) for r in rows], total, page)

    def token(self, token_id: str) -> TokenRecord | None:
        with self._reads.connect() as conn:
            row = conn.execute(_select_tokens().where(api_tokens.c.id == token_id)).one_or_none()
        return None if row is None else _token(row)

    def token_key_ids(self) -> set[str]:
        """Signing keys the unrevoked tokens' hashes were made with (start-up check)."""
        with self._reads.connect() as conn:
            rows = conn.execute(
                sa.select(api_tokens.c.key_id)
                .where(api_tokens.c.key_id.is_not(None), api_tokens.c.revoked_at.is_(None))
                .distinct()
            ).scalars()
            return {str(k) for k in rows}

    def revoke_token(
        self, token_id: str, now: datetime, audit: AuditHook | None = None
    ) -> TokenRecord:
        """Revoke once: revoking again keeps the first time."""
        with self._engine.begin() as conn:
            conn.execute(
                api_tokens.update()
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = conn.execute(_select_tokens().where(api_tokens.c.id == token_id)).one_or_none()
            if row is None:
                raise NotFound(f"no token with id {token_id!r}")
            if audit is not None:
                audit(conn, token_id, {})
        return _token(row)
