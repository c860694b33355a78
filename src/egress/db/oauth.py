"""Authorization codes and refresh tokens: stored only as HMACs, each usable once.

A code is taken (marked used) in the same statement that checks it is unused, so two
concurrent exchanges of one code cannot both succeed. A refresh token is rotated the same
way; presenting one that was already used or revoked revokes its whole family — the stolen
copy and the legitimate one alike (OAuth 2.0 Security BCP, refresh token rotation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from egress.db.engine import Repository
from egress.db.tables import oauth_codes, refresh_tokens
from egress.domain.clock import new_id


@dataclass(frozen=True)
class CodeRecord:
    code_hash: str
    client_id: str
    user_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True)
class RefreshRecord:
    id: str
    token_hash: str
    family_id: str
    client_id: str
    user_id: str
    scope: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


class GrantRepo(Repository):
    def save_code(self, **values: Any) -> None:
        with self._engine.begin() as conn:
            conn.execute(oauth_codes.insert().values(created_at=self._clock(), **values))

    def code(self, code_hashes: list[str], client_id: str) -> CodeRecord | None:
        """The unused, unexpired code issued to ``client_id`` stored as one of the hashes."""
        with self._reads.connect() as conn:
            row = conn.execute(
                sa.select(oauth_codes).where(
                    oauth_codes.c.code_hash.in_(code_hashes),
                    oauth_codes.c.client_id == client_id,
                    oauth_codes.c.used_at.is_(None),
                    oauth_codes.c.expires_at > self._clock(),
                )
            ).one_or_none()
        return None if row is None else CodeRecord(**row._asdict())

    def use_code(self, code_hash: str) -> bool:
        """Mark the code used; False if another request used it first."""
        with self._engine.begin() as conn:
            done = conn.execute(
                oauth_codes.update()
                .where(oauth_codes.c.code_hash == code_hash, oauth_codes.c.used_at.is_(None))
                .values(used_at=self._clock())
            )
        return done.rowcount == 1

    def add_refresh(
        self,
        token_hash: str,
        family_id: str | None,
        client_id: str,
        user_id: str,
        scope: str,
        expires_at: datetime,
    ) -> str:
        """A new refresh token; ``family_id`` None starts a family (a new sign-in)."""
        token_id = new_id()
        with self._engine.begin() as conn:
            conn.execute(
                refresh_tokens.insert().values(
                    id=token_id,
                    token_hash=token_hash,
                    family_id=family_id or token_id,
                    client_id=client_id,
                    user_id=user_id,
                    scope=scope,
                    created_at=self._clock(),
                    expires_at=expires_at,
                )
            )
        return token_id

    def refresh(self, token_hashes: list[str]) -> RefreshRecord | None:
        """The refresh token stored as one of the hashes (one per signing key)."""
        with self._reads.connect() as conn:
            row = conn.execute(
                sa.select(refresh_tokens).where(refresh_tokens.c.token_hash.in_(token_hashes))
            ).first()
        return None if row is None else RefreshRecord(**row._asdict())

    def use_refresh(self, token_id: str) -> bool:
        """Mark the token rotated; False if it was used or revoked meanwhile."""
        with self._engine.begin() as conn:
            done = conn.execute(
                refresh_tokens.update()
                .where(
                    refresh_tokens.c.id == token_id,
                    refresh_tokens.c.used_at.is_(None),
                    refresh_tokens.c.revoked_at.is_(None),
                )
                .values(used_at=self._clock())
            )
        return done.rowcount == 1

    def revoke_family(self, family_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                refresh_tokens.update()
                .where(
                    refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None)
                )
                .values(revoked_at=self._clock())
            )
