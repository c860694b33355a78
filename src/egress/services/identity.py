"""Workspaces, API tokens, and who a credential belongs to.

The ``egress admin`` commands and the API's authentication call these; the rules (roles,
expiry) are in ``domain.identity``. A token is stored only as HMAC-SHA256 under the current
signing key (``EGRESS_SIGNING_KEYS``), so a copied database alone cannot confirm a guessed
token; tokens hashed under an older ring key, or as a plain sha256 before migration 0007, are
accepted and re-hashed under the current key on first use.

Three kinds of bearer credential: operator tokens (``egr_``, ``egress admin create-token``, and
``EGRESS_BOOTSTRAP_TOKEN``), personal access tokens (``egp_``, ``POST /api/v1/tokens``, acting
for their creator with at most the creator's current role) and OAuth access tokens (JWTs,
``access_tokens``). What the database says about each is remembered in the
``RevocationCache`` for at most ``EGRESS_REVOCATION_CACHE_S``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from egress.access_tokens import AccessTokens, looks_like_jwt
from egress.db.audit import AuditHook
from egress.db.paging import Page
from egress.db.users import ClientRepo, UserRepo
from egress.db.workspaces import TokenRecord, WorkspaceRepo
from egress.domain import audit as a
from egress.domain.audit import OPERATOR
from egress.domain.clock import Clock
from egress.domain.errors import Forbidden, NotFound, Unauthenticated
from egress.domain.identity import (
    ADMIN,
    PERSONAL_TOKEN_PREFIX,
    TOKEN_BYTES,
    TOKEN_PREFIX,
    Principal,
    Subject,
    at_least,
    check_name,
    check_role,
    lower_role,
    token_expiry,
    token_state,
)
from egress.domain.paging import PageRequest
from egress.services.audit import AuditService
from egress.services.revocation import RevocationCache
from egress.signing import SigningRing

# Mixed into every token HMAC: a value signed for another purpose never matches a token hash.
TOKEN_PURPOSE = "api-token"
BOOTSTRAP_WORKSPACE = "default"
_STATE_MESSAGES = {"expired": "has expired", "revoked": "has been revoked"}
# How each credential authenticated, as GET /api/v1/me reports it.
AUTH_TOKEN = "token"
AUTH_PERSONAL = "personal_token"
AUTH_OAUTH = "oauth"

__all__ = ["IdentityService", "NewToken", "TokenRecord"]


@dataclass(frozen=True)
class NewToken:
    record: TokenRecord
    token: str  # shown once, never stored


@dataclass(frozen=True)
class _Known:
    """A token as the database had it, with its creator's role then (None: no longer any)."""

    record: TokenRecord
    creator_role: str | None


def token_hash(ring: SigningRing, key_id: str, token: str) -> str:
    key = ring.key(key_id)
    assert key is not None, key_id
    return ring.mac(key, TOKEN_PURPOSE, token.encode()).hex()


def _candidate_hashes(ring: SigningRing, token: str) -> dict[str, str | None]:
    """Every hash the token may be stored as → the key id it was made with (None: sha256)."""
    found: dict[str, str | None] = {token_hash(ring, k.id, token): k.id for k in ring.keys}
    found[hashlib.sha256(token.encode()).hexdigest()] = None
    return found


def _creator(record: TokenRecord) -> Subject | None:
    if record.creator_type is None or record.creator_id is None:
        return None
    return Subject(record.creator_type, record.creator_id, record.creator_name or "")


class IdentityService:
    """Workspaces, API tokens, and who a bearer token belongs to."""

    def __init__(
        self,
        workspaces: WorkspaceRepo,
        users: UserRepo,
        clients: ClientRepo,
        signing: SigningRing,
        access_tokens: AccessTokens,
        cache: RevocationCache,
        clock: Clock,
        audit: AuditService,
    ) -> None:
        self._workspaces = workspaces
        self._users = users
        self._clients = clients
        self._signing = signing
        self._access = access_tokens
        self._cache = cache
        self._clock = clock
        self._audit = audit

    def _hook(
        self, action: str, workspace_id: str, name: str, role: str, by: Principal | None
    ) -> AuditHook:
        """A token change's entry, written in its transaction; ``by`` None: the operator
        through ``egress admin``."""
        return self._audit.hook(
            action,
            "token",
            by=by,
            workspace_id=workspace_id,
            actor=None if by else OPERATOR,
            detail={"name": name, "role": role},
        )

    def _upgrade_hash(self, record: TokenRecord, token: str) -> None:
        current = self._signing.current.id
        if record.key_id != current:
            self._workspaces.rehash_token(
                record.id, record.token_hash, current, token_hash(self._signing, current, token)
            )

    def create_workspace(self, name: str) -> str:
        return self._workspaces.create_workspace(check_name(name, ("name",)))

    def workspace_name(self, workspace_id: str) -> str:
        return self._workspaces.workspace_name(workspace_id)

    def create_token(
        self,
        workspace_id: str,
        role: str,
        name: str,
        expires_in_days: int | None = None,
        creator: Subject | None = None,
        by: Principal | None = None,
    ) -> NewToken:
        """An operator token, or with ``creator`` a personal one acting for them."""
        now = self._clock()
        prefix = TOKEN_PREFIX if creator is None else PERSONAL_TOKEN_PREFIX
        token = prefix + secrets.token_urlsafe(TOKEN_BYTES)
        key_id = self._signing.current.id
        name, role = check_name(name, ("name",)), check_role(role)
        record = self._workspaces.add_token(
            workspace_id,
            name,
            role,
            key_id,
            token_hash(self._signing, key_id, token),
            now,
            token_expiry(now, expires_in_days),
            None if creator is None else (creator.type, creator.id, creator.name),
            self._hook(a.TOKEN_CREATE, workspace_id, name, role, by),
        )
        return NewToken(record, token)

    def list_tokens(self, workspace_id: str | None = None) -> list[TokenRecord]:
        return self._workspaces.tokens(workspace_id)

    def revoke_token(self, token_id: str, by: Principal | None = None) -> TokenRecord:
        found = self._workspaces.token(token_id)
        if found is None:
            raise NotFound(f"no token with id {token_id!r}")
        hook = self._hook(a.TOKEN_REVOKE, found.workspace_id, found.name, found.role, by)
        return self._workspaces.revoke_token(token_id, self._clock(), hook)

    # ------------------------------------------------------------ personal access tokens
    def create_personal_token(
        self, p: Principal, name: str, role: str | None, expires_in_days: int | None
    ) -> NewToken:
        """A token acting for the caller (the user behind it, if the caller is a token)."""
        wanted = check_role(role or p.role, ("body", "role"))
        if not at_least(p.role, wanted):
            raise Forbidden(f"a {p.role} cannot make a token with the {wanted} role")
        return self.create_token(
            p.workspace_id, wanted, name, expires_in_days, creator=p.actor, by=p
        )

    def personal_tokens(self, p: Principal, page: PageRequest) -> Page[TokenRecord]:
        """An admin sees every token of the workspace; anyone else the ones acting for them."""
        mine = None if p.role == ADMIN else (p.actor.type, p.actor.id)
        return self._workspaces.tokens_page(p.workspace_id, mine, page)

    def revoke_personal_token(self, p: Principal, token_id: str) -> TokenRecord:
        record = self._workspaces.token(token_id)
        mine = record is not None and _creator(record) == p.actor
        if record is None or record.workspace_id != p.workspace_id or not (mine or p.role == ADMIN):
            raise NotFound(f"token {token_id} not found")
        return self.revoke_token(token_id, by=p)

    # ------------------------------------------------------------------ authentication
    def authenticate(self, token: str) -> Principal:
        """The caller a bearer credential stands for; Unauthenticated unless it is valid."""
        if looks_like_jwt(token):
            claims = self._cache.get(("jwt", token), lambda: self._access.signed_claims(token))
            return self._from_access_token(self._access.current(claims))
        key = ("token", hashlib.sha256(token.encode()).hexdigest())
        loaded: list[_Known] = []

        def load() -> _Known | None:
            record = self._workspaces.find_token(_candidate_hashes(self._signing, token))
            if record is None:
                return None
            loaded.append(_Known(record, self._creator_role(record)))
            return loaded[0]

        known = self._cache.get(key, load)
        if known is None:
            raise Unauthenticated("the bearer token is not valid")
        record = known.record
        state = token_state(self._clock(), record.expires_at, record.revoked_at)
        subject = Subject("token", record.id, record.name)
        if state != "valid":
            raise Unauthenticated(
                f"the bearer token {_STATE_MESSAGES[state]}", record.workspace_id, subject
            )
        if loaded:  # read from the database just now
            self._upgrade_hash(record, token)
        creator = _creator(record)
        if creator is None:
            return Principal(record.workspace_id, record.role, subject)
        if known.creator_role is None:
            raise Unauthenticated("the bearer token's creator no longer has access")
        role = lower_role(record.role, known.creator_role)
        return Principal(record.workspace_id, role, subject, AUTH_PERSONAL, creator)

    def _creator_role(self, record: TokenRecord) -> str | None:
        """The current role of whom a personal token acts for, in the token's workspace."""
        creator = _creator(record)
        if creator is None:
            return record.role
        if creator.type == "user":
            standing = self._users.standing(record.workspace_id, creator.id)
            return None if standing is None else standing[0]
        if creator.type == "client":
            client = self._clients.find(creator.id)
            ok = client and client.revoked_at is None and client.workspace_id == record.workspace_id
            return client.role if client and ok else None
        made_by = self._workspaces.token(creator.id)
        if made_by is None or made_by.workspace_id != record.workspace_id:
            return None
        valid = token_state(self._clock(), made_by.expires_at, made_by.revoked_at) == "valid"
        return made_by.role if valid else None

    def _from_access_token(self, claims: dict[str, Any]) -> Principal:
        kind, subject_id, workspace_id = claims.get("sub_type"), claims.get("sub"), claims.get("ws")
        if kind not in ("user", "client") or not subject_id or not workspace_id:
            raise Unauthenticated("the bearer token is not valid")
        standing = self._cache.get(
            (kind, workspace_id, subject_id),
            lambda: (self._standing(kind, workspace_id, subject_id),),
        )[0]
        # iat has whole seconds: a token of the very second of a revocation counts as before it.
        if standing is None or (standing[1] is not None and claims["iat"] <= standing[1]):
            raise Unauthenticated("the bearer token has been revoked")
        subject = Subject(kind, subject_id, str(claims.get("name", "")))
        return Principal(workspace_id, lower_role(claims["role"], standing[0]), subject, AUTH_OAUTH)

    def _standing(
        self, kind: str, workspace_id: str, subject_id: str
    ) -> tuple[str, int | None] | None:
        """(current role, not-before as a Unix time) of an access token's subject, or None."""
        if kind == "client":
            client = self._clients.find(subject_id)
            if (
                client is None
                or client.revoked_at is not None
                or client.workspace_id != workspace_id
            ):
                return None
            return client.role, None
        standing = self._users.standing(workspace_id, subject_id)
        if standing is None:
            return None
        role, not_before = standing
        return role, None if not_before is None else int(not_before.timestamp())

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
