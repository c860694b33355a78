"""Workspaces, API tokens, and who a bearer token belongs to.

The ``egress admin`` commands and the API's authentication call these; the rules (roles,
expiry) are in ``domain.identity``. A token is stored only as HMAC-SHA256 under the current
signing key (``EGRESS_SIGNING_KEYS``), so a copied database alone cannot confirm a guessed
token; tokens hashed under an older ring key, or as a plain sha256 before migration 0007, are
accepted and re-hashed under the current key on first use.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from egress.db.workspaces import TokenRecord, WorkspaceRepo
from egress.domain import audit as a
from egress.domain.audit import OPERATOR, AuditObject
from egress.domain.clock import Clock
from egress.domain.errors import Unauthenticated
from egress.domain.identity import (
    ADMIN,
    TOKEN_BYTES,
    TOKEN_PREFIX,
    Principal,
    Subject,
    check_name,
    check_role,
    token_expiry,
    token_state,
)
from egress.services.audit import AuditService
from egress.signing import SigningRing

# Mixed into every token HMAC: a value signed for another purpose never matches a token hash.
TOKEN_PURPOSE = "api-token"
BOOTSTRAP_WORKSPACE = "default"
_STATE_MESSAGES = {"expired": "has expired", "revoked": "has been revoked"}


@dataclass(frozen=True)
class NewToken:
    record: TokenRecord
    token: str  # shown once, never stored


def token_hash(ring: SigningRing, key_id: str, token: str) -> str:
    key = ring.key(key_id)
    assert key is not None, key_id
    return ring.mac(key, TOKEN_PURPOSE, token.encode()).hex()


def _candidate_hashes(ring: SigningRing, token: str) -> dict[str, str | None]:
    """Every hash the token may be stored as → the key id it was made with (None: sha256)."""
    found: dict[str, str | None] = {token_hash(ring, k.id, token): k.id for k in ring.keys}
    found[hashlib.sha256(token.encode()).hexdigest()] = None
    return found


class IdentityService:
    """Workspaces, API tokens, and who a bearer token belongs to."""

    def __init__(
        self, workspaces: WorkspaceRepo, signing: SigningRing, clock: Clock, audit: AuditService
    ) -> None:
        self._workspaces = workspaces
        self._signing = signing
        self._clock = clock
        self._audit = audit

    def _record(self, action: str, record: TokenRecord, by: Principal | None) -> None:
        """``by`` None: the operator through ``egress admin``."""
        self._audit.record(
            action,
            AuditObject("token", record.id),
            by=by,
            workspace_id=record.workspace_id,
            actor=None if by else OPERATOR,
            detail={"name": record.name, "role": record.role},
        )

    def _upgrade_hash(self, record: TokenRecord, token: str) -> None:
        current = self._signing.current.id
        if record.key_id != current:
            self._workspaces.rehash_token(
                record.id, record.token_hash, current, token_hash(self._signing, current, token)
            )

    def create_workspace(self, name: str) -> str:
        return self._workspaces.create_workspace(check_name(name, ("name",)))

    def create_token(
        self,
        workspace_id: str,
        role: str,
        name: str,
        expires_in_days: int | None = None,
        by: Principal | None = None,
    ) -> NewToken:
        now = self._clock()
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        key_id = self._signing.current.id
        record = self._workspaces.add_token(
            workspace_id,
            check_name(name, ("name",)),
            check_role(role),
            key_id,
            token_hash(self._signing, key_id, token),
            now,
            token_expiry(now, expires_in_days),
        )
        self._record(a.TOKEN_CREATE, record, by)
        return NewToken(record, token)

    def list_tokens(self, workspace_id: str | None = None) -> list[TokenRecord]:
        return self._workspaces.tokens(workspace_id)

    def revoke_token(self, token_id: str, by: Principal | None = None) -> TokenRecord:
        record = self._workspaces.revoke_token(token_id, self._clock())
        self._record(a.TOKEN_REVOKE, record, by)
        return record

    def authenticate(self, token: str) -> Principal:
        """The caller a bearer token stands for; Unauthenticated unless it is known and valid."""
        record = self._workspaces.find_token(_candidate_hashes(self._signing, token))
        if record is None:
            raise Unauthenticated("the bearer token is not valid")
        state = token_state(self._clock(), record.expires_at, record.revoked_at)
        subject = Subject("token", record.id, record.name)
        if state != "valid":
            raise Unauthenticated(
                f"the bearer token {_STATE_MESSAGES[state]}", record.workspace_id, subject
            )
        self._upgrade_hash(record, token)
        return Principal(workspace_id=record.workspace_id, role=record.role, subject=subject)

    def ensure_bootstrap_token(self, token: str | None) -> None:
        """Make EGRESS_BOOTSTRAP_TOKEN an admin token of the workspace ``default`` (every start).

        A revoked bootstrap token stays revoked: revocation is the operator's last word.
        """
        if not token:
            return
        ws = self._workspaces.ensure_workspace(BOOTSTRAP_WORKSPACE)
        record = self._workspaces.find_token(_candidate_hashes(self._signing, token))
        if record is None:
            key_id = self._signing.current.id
            self._workspaces.add_token(
                ws,
                "bootstrap",
                ADMIN,
                key_id,
                token_hash(self._signing, key_id, token),
                self._clock(),
                None,
            )
            return
        self._upgrade_hash(record, token)
        self._workspaces.update_token(record.id, workspace_id=ws, role=ADMIN, name="bootstrap")
