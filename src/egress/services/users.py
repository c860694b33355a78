"""Users (email + argon2id password, a role per workspace) and OAuth clients (id + secret,
bound to one workspace and role), as admins and ``egress admin`` manage them.

Every change is on the audit trail, written in the change's own transaction: ``by`` is the
admin who made it, None the operator through ``egress admin``."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from egress.db.audit import AuditHook
from egress.db.paging import Page
from egress.db.users import ClientRecord, ClientRepo, MemberRecord, UserCredentials, UserRepo
from egress.domain import audit as a
from egress.domain.audit import OPERATOR
from egress.domain.errors import Invalid, NotFound
from egress.domain.identity import Principal, check_name, check_role
from egress.domain.paging import PageRequest
from egress.services.audit import AuditService
from egress.signing import SigningRing

# Client secrets are HMACs under the signing ring, like tokens, under a purpose of their own.
CLIENT_SECRET_PURPOSE = "oauth-client-secret"
CLIENT_SECRET_PREFIX = "egs_"
# argon2-cffi's defaults are RFC 9106's second recommendation (argon2id, 64 MiB, t=3).
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verifying against this when the email is unknown takes as long as a real check: the
    sign-in answer's timing does not tell which emails have accounts."""
    return _hasher.hash(secrets.token_urlsafe(16))


__all__ = ["ClientRecord", "MemberRecord", "NewClient", "UserService"]


@dataclass(frozen=True)
class NewClient:
    record: ClientRecord
    secret: str | None  # shown once; None for a public client


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _check_redirect_uri(uri: str, n: int) -> str:
    parts = urlsplit(uri)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment:
        raise Invalid.at(("body", "redirect_uris", n), "must be an absolute http(s) URL without #")
    if parts.scheme == "http" and not loopback:
        raise Invalid.at(("body", "redirect_uris", n), "must be https (http only for loopback)")
    return uri


class UserService:
    def __init__(
        self, users: UserRepo, clients: ClientRepo, signing: SigningRing, audit: AuditService
    ) -> None:
        self._users = users
        self._clients = clients
        self._signing = signing
        self._audit = audit

    def _hook(
        self,
        action: str,
        object_type: str,
        workspace_id: str,
        by: Principal | None,
        detail: dict[str, Any] | None = None,
    ) -> AuditHook:
        return self._audit.hook(
            action,
            object_type,
            by=by,
            workspace_id=workspace_id,
            detail=detail,
            actor=None if by else OPERATOR,
        )

    # ------------------------------------------------------------------------- users
    def add(
        self,
        workspace_id: str,
        email: str,
        role: str,
        password: str | None,
        by: Principal | None = None,
    ) -> MemberRecord:
        hashed = None if password is None else _hasher.hash(password)
        email, role = normalise_email(email), check_role(role, ("body", "role"))
        detail = {"email": email, "role": role, "passwordSet": hashed is not None}
        return self._users.add_member(
            workspace_id,
            email,
            role,
            hashed,
            self._hook(a.USER_INVITE, "user", workspace_id, by, detail),
        )

    def list_page(self, workspace_id: str, page: PageRequest) -> Page[MemberRecord]:
        return self._users.members(workspace_id, page)

    def get(self, workspace_id: str, user_id: str) -> MemberRecord:
        return self._users.get(workspace_id, user_id)

    def update(
        self,
        workspace_id: str,
        user_id: str,
        role: str | None,
        password: str | None,
        by: Principal | None = None,
    ) -> MemberRecord:
        if role is not None:
            check_role(role, ("body", "role"))
        hashed = None if password is None else _hasher.hash(password)
        return self._users.update_member(
            workspace_id,
            user_id,
            role,
            hashed,
            on_role=self._hook(a.ROLE_CHANGE, "user", workspace_id, by),
            on_password=self._hook(a.USER_PASSWORD, "user", workspace_id, by),
        )

    def remove(self, workspace_id: str, user_id: str, by: Principal | None = None) -> None:
        self._users.remove_member(
            workspace_id, user_id, self._hook(a.USER_REMOVE, "user", workspace_id, by)
        )

    def check_password(self, email: str, password: str) -> UserCredentials | None:
        """The user whose password this is, or None (unknown email, no password, wrong)."""
        found = self._users.credentials(normalise_email(email))
        try:
            _hasher.verify(
                found.password_hash if found and found.password_hash else _dummy_hash(), password
            )
        except (VerificationError, InvalidHashError):
            return None
        return found if found and found.password_hash else None

    def member(self, workspace_id: str, user_id: str) -> MemberRecord | None:
        """The user as a member of the workspace, or None when they are not one."""
        try:
            return self._users.get(workspace_id, user_id)
        except NotFound:
            return None

    # ----------------------------------------------------------------------- clients
    def create_client(
        self,
        workspace_id: str,
        name: str,
        role: str,
        redirect_uris: list[str],
        *,
        public: bool = False,
        by: Principal | None = None,
    ) -> NewClient:
        uris = [_check_redirect_uri(u, n) for n, u in enumerate(redirect_uris)]
        if public and not uris:
            raise Invalid.at(("body", "redirect_uris"), "a public client needs a redirect URI")
        secret = None if public else CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)
        key = self._signing.current
        stored = None if secret is None else (key.id, self._secret_hash(key.id, secret))
        name, role = check_name(name, ("body", "name")), check_role(role, ("body", "role"))
        detail = {"name": name, "role": role, "public": public}
        record = self._clients.add(
            workspace_id,
            name,
            role,
            stored,
            uris,
            self._hook(a.CLIENT_CREATE, "client", workspace_id, by, detail),
        )
        return NewClient(record, secret)

    def _secret_hash(self, key_id: str, secret: str) -> str:
        key = self._signing.key(key_id)
        assert key is not None, key_id
        return self._signing.mac(key, CLIENT_SECRET_PURPOSE, secret.encode()).hex()

    def client(self, client_id: str) -> ClientRecord | None:
        """Any workspace's client that is not revoked (the token endpoint's lookup)."""
        found = self._clients.find(client_id)
        return found if found is not None and found.revoked_at is None else None

    def check_client_secret(self, client: ClientRecord, secret: str) -> bool:
        if client.secret_hash is None or client.key_id is None:
            return False
        if self._signing.key(client.key_id) is None:  # its key left the ring
            return False
        return hmac.compare_digest(client.secret_hash, self._secret_hash(client.key_id, secret))

    def clients_page(self, workspace_id: str, page: PageRequest) -> Page[ClientRecord]:
        return self._clients.list_page(workspace_id, page)

    def revoke_client(self, workspace_id: str, client_id: str, by: Principal | None = None) -> None:
        self._clients.revoke(
            workspace_id, client_id, self._hook(a.CLIENT_REVOKE, "client", workspace_id, by)
        )
