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

from egress.container import Container
from egress.db.workspaces import Principal, TokenRecord
from egress.domain.errors import Unauthenticated
from egress.domain.identity import (
    ADMIN,
    TOKEN_BYTES,
    TOKEN_PREFIX,
    check_name,
    check_role,
    token_expiry,
    token_state,
)
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


def _upgrade_hash(c: Container, record: TokenRecord, token: str) -> None:
    current = c.signing.current.id
    if record.key_id != current:
        c.workspaces.rehash_token(
            record.id, record.token_hash, current, token_hash(c.signing, current, token)
        )


def create_workspace(c: Container, name: str) -> str:
    return c.workspaces.create_workspace(check_name(name, ("name",)))


def create_token(
    c: Container, workspace_id: str, role: str, name: str, expires_in_days: int | None = None
) -> NewToken:
    now = c.clock()
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    key_id = c.signing.current.id
    record = c.workspaces.add_token(
        workspace_id,
        check_name(name, ("name",)),
        check_role(role),
        key_id,
        token_hash(c.signing, key_id, token),
        now,
        token_expiry(now, expires_in_days),
    )
    return NewToken(record, token)


def list_tokens(c: Container, workspace_id: str | None = None) -> list[TokenRecord]:
    return c.workspaces.tokens(workspace_id)


def revoke_token(c: Container, token_id: str) -> TokenRecord:
    return c.workspaces.revoke_token(token_id, c.clock())


def authenticate(c: Container, token: str) -> Principal:
    """The caller a bearer token stands for; Unauthenticated unless it is known and valid."""
    record = c.workspaces.find_token(_candidate_hashes(c.signing, token))
    if record is None:
        raise Unauthenticated("the bearer token is not valid")
    state = token_state(c.clock(), record.expires_at, record.revoked_at)
    if state != "valid":
        raise Unauthenticated(f"the bearer token {_STATE_MESSAGES[state]}")
    _upgrade_hash(c, record, token)
    return Principal(workspace_id=record.workspace_id, role=record.role, token_id=record.id)


def ensure_bootstrap_token(c: Container) -> None:
    """Make EGRESS_BOOTSTRAP_TOKEN an admin token of the workspace ``default`` (every start).

    A revoked bootstrap token stays revoked: revocation is the operator's last word.
    """
    token = c.settings.bootstrap_token
    if not token:
        return
    ws = c.workspaces.ensure_workspace(BOOTSTRAP_WORKSPACE)
    record = c.workspaces.find_token(_candidate_hashes(c.signing, token))
    if record is None:
        key_id = c.signing.current.id
        c.workspaces.add_token(
            ws, "bootstrap", ADMIN, key_id, token_hash(c.signing, key_id, token), c.clock(), None
        )
        return
    _upgrade_hash(c, record, token)
    c.workspaces.update_token(record.id, workspace_id=ws, role=ADMIN, name="bootstrap")
