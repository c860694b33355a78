"""Workspaces (tenants) and API tokens."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from egress.db.tables import api_tokens, workspaces
from egress.domain.clock import new_id, utcnow

ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """Who is calling: every repository call is scoped by ``workspace_id``."""

    workspace_id: str
    role: str
    token_id: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class WorkspaceRepo:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def ensure_workspace(self, name: str) -> str:
        with self._engine.begin() as conn:
            found = conn.execute(
                sa.select(workspaces.c.id).where(workspaces.c.name == name)
            ).scalar_one_or_none()
            if found is not None:
                return str(found)
            ws_id = new_id()
            conn.execute(workspaces.insert().values(id=ws_id, name=name, created_at=utcnow()))
            return ws_id

    def ensure_token(self, workspace_id: str, token: str, role: str, name: str) -> None:
        digest = hash_token(token)
        with self._engine.begin() as conn:
            existing = conn.execute(
                sa.select(api_tokens.c.id).where(api_tokens.c.token_hash == digest)
            ).scalar_one_or_none()
            values = {"workspace_id": workspace_id, "role": role, "name": name}
            if existing is None:
                conn.execute(
                    api_tokens.insert().values(
                        id=new_id(), token_hash=digest, created_at=utcnow(), **values
                    )
                )
            else:
                conn.execute(
                    api_tokens.update().where(api_tokens.c.id == existing).values(**values)
                )

    def principal_for_token(self, token: str) -> Principal | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(api_tokens.c.id, api_tokens.c.workspace_id, api_tokens.c.role).where(
                    api_tokens.c.token_hash == hash_token(token)
                )
            ).one_or_none()
        if row is None:
            return None
        return Principal(workspace_id=row.workspace_id, role=row.role, token_id=row.id)
