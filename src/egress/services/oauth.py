"""The OAuth 2.0 authorization server, built on Authlib's grants (no protocol code of ours):
``client_credentials`` for machines, ``authorization_code`` with PKCE (S256 only) for browsers,
and ``refresh_token`` with rotation and reuse detection. No ``password`` grant.

This module supplies what Authlib leaves to its user — where clients, codes and refresh
tokens live, how a token looks (an ES256 JWT from ``access_tokens``: workspace, subject, role,
expiry, key id) — and makes every sign-in (the sign-in page's password, each token request) go
through ``services.sign_ins``: on the audit trail, and refused with 429 for an address that
failed too often. It is framework-free: ``api/oauth.py`` turns HTTP requests into
``OAuthRequest`` and Authlib's ``(status, body, headers)`` answers back into responses.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7636 import CodeChallenge

from egress.access_tokens import AccessTokens
from egress.db.oauth import CodeRecord, GrantRepo, RefreshRecord
from egress.db.users import ClientRecord, UserCredentials
from egress.domain.clock import Clock
from egress.domain.identity import Subject, lower_role
from egress.services.sign_in_forms import SignInForms
from egress.services.sign_ins import SignInGuard
from egress.services.users import UserService
from egress.signing import SigningRing

# Codes are exchanged by the browser's next request: a minute is plenty, and a leaked one
# soon is worthless.
CODE_TTL = timedelta(minutes=1)
# A refresh token not used for this long ends the sign-in.
REFRESH_TTL = timedelta(days=30)
CODE_PURPOSE = "oauth-code"
REFRESH_PURPOSE = "oauth-refresh"
SCOPE = "api"
# How a sign-in happened, as its audit entry says: the sign-in page, or a token request's grant.
PASSWORD_METHOD = "password"
_METHODS = ("authorization_code", "client_credentials", "refresh_token")
Answer = tuple[int, Any, list[tuple[str, str]]]


class OAuthRequest(OAuth2Request):  # type: ignore[misc]  # Authlib is untyped
    """A request as Authlib reads it: method, URL, headers and the query+form parameters."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: dict[str, str],
        params: list[tuple[str, str]],
        source_address: str | None = None,
    ) -> None:
        super().__init__(method, uri, headers=headers)
        self.source_address = source_address
        data: dict[str, str] = {}
        datalist: defaultdict[str, list[str]] = defaultdict(list)
        for k, v in params:
            data.setdefault(k, v)
            datalist[k].append(v)
        self.payload = BasicOAuth2Payload(data)
        self.payload._datalist = datalist  # repeated parameters are refused by Authlib
        self._form = data

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return self._form


class _Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, record: ClientRecord, users: UserService) -> None:
        self.record = record
        self._users = users

    def get_client_id(self) -> str:
        return self.record.id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.record.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        return SCOPE

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.record.redirect_uris  # exact match, no prefixes

    def check_client_secret(self, client_secret: str) -> bool:
        return self._users.check_client_secret(self.record, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        public = self.record.secret_hash is None
        return (
            method == "none" if public else method in ("client_secret_basic", "client_secret_post")
        )

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and bool(self.record.redirect_uris)

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "client_credentials":
            return self.record.secret_hash is not None
        return grant_type in ("authorization_code", "refresh_token") and bool(
            self.record.redirect_uris
        )


@dataclass(frozen=True)
class SignedIn:
    """The person behind an authorization code or refresh token, as a member of the client's
    workspace now."""

    user_id: str
    email: str
    role: str

    def get_user_id(self) -> str:
        return self.user_id


class _Code:
    def __init__(self, record: CodeRecord) -> None:
        self.record = record

    def get_redirect_uri(self) -> str:
        return self.record.redirect_uri

    def get_scope(self) -> str:
        return self.record.scope


class _Refresh:
    def __init__(self, record: RefreshRecord) -> None:
        self.record = record

    def check_client(self, client: _Client) -> bool:
        return client.record.id == self.record.client_id

    def get_scope(self) -> str:
        return self.record.scope


class _ClientCredentials(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]


class _AuthorizationCode(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
        "none",
        "client_secret_basic",
        "client_secret_post",
    ]
    server: OAuthServer

    def save_authorization_code(self, code: str, request: OAuthRequest) -> None:
        s = self.server
        s.grants.save_code(
            code_hash=s.hash(CODE_PURPOSE, code),
            client_id=request.client.record.id,
            user_id=request.user.user_id,
            redirect_uri=request.payload.redirect_uri or "",
            scope=SCOPE,
            code_challenge=request.payload.data["code_challenge"],
            code_challenge_method=request.payload.data.get("code_challenge_method") or "S256",
            expires_at=s.clock() + CODE_TTL,
        )

    def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
        found = self.server.grants.code(self.server.hashes(CODE_PURPOSE, code), client.record.id)
        return None if found is None else _Code(found)

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        # Used once: marked, so a replayed code finds nothing (and a racing one loses here).
        if not self.server.grants.use_code(authorization_code.record.code_hash):
            raise grants.InvalidGrantError("the code was already used")

    def authenticate_user(self, authorization_code: _Code) -> SignedIn | None:
        return self.server.member(authorization_code.record.user_id, self.request.client)


class _RefreshToken(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
        "none",
        "client_secret_basic",
        "client_secret_post",
    ]
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every refresh token is used once
    server: OAuthServer

    def authenticate_refresh_token(self, refresh_token: str) -> _Refresh | None:
        s = self.server
        found = s.grants.refresh(s.hashes(REFRESH_PURPOSE, refresh_token))
        if found is None:
            return None
        if found.used_at is not None or found.revoked_at is not None:
            s.grants.revoke_family(found.family_id)  # a replay: someone holds a stolen copy
            return None
        return _Refresh(found) if found.expires_at > s.clock() else None

    def authenticate_user(self, refresh_token: _Refresh) -> SignedIn | None:
        return self.server.member(refresh_token.record.user_id, self.request.client)

    def revoke_old_credential(self, refresh_token: _Refresh) -> None:
        if not self.server.grants.use_refresh(refresh_token.record.id):
            self.server.grants.revoke_family(refresh_token.record.family_id)


class _S256Only(CodeChallenge):  # type: ignore[misc]
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def get_authorization_code_challenge(self, authorization_code: _Code) -> str:
        return authorization_code.record.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: _Code) -> str:
        return authorization_code.record.code_challenge_method


class OAuthServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(
        self,
        users: UserService,
        grant_repo: GrantRepo,
        access_tokens: AccessTokens,
        signing: SigningRing,
        clock: Clock,
        sign_ins: SignInGuard,
    ) -> None:
        super().__init__(scopes_supported=[SCOPE])
        self.sign_ins = sign_ins
        self.forms = SignInForms(signing, clock)
        self.users = users
        self.grants = grant_repo
        self.access_tokens = access_tokens
        self.signing = signing
        self.clock = clock
        self.register_token_generator("default", self._token)
        self.register_grant(_ClientCredentials)
        self.register_grant(_AuthorizationCode, [_S256Only(required=True)])
        self.register_grant(_RefreshToken)

    def hash(self, purpose: str, value: str) -> str:
        """How a code or refresh token is stored: HMAC under the current signing key."""
        return self.signing.mac(self.signing.current, purpose, value.encode()).hex()

    def hashes(self, purpose: str, value: str) -> list[str]:
        """Every way it may have been stored: a refresh token made before a key rotation is
        still found (it lives 30 days; the rotation must not sign everyone out)."""
        return [self.signing.mac(k, purpose, value.encode()).hex() for k in self.signing.keys]

    def member(self, user_id: str, client: _Client) -> SignedIn | None:
        """Only a user still a member of the client's workspace gets tokens (checked again at
        every refresh, so a removed user's refresh tokens stop working)."""
        found = self.users.member(client.record.workspace_id, user_id)
        return None if found is None else SignedIn(found.id, found.email, found.role)

    def query_client(self, client_id: str) -> _Client | None:
        record = self.users.client(client_id)
        return None if record is None else _Client(record, self.users)

    def _token(
        self,
        grant_type: str,
        client: _Client,
        user: SignedIn | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        c = client.record
        if user is None:
            claims = {"sub": c.id, "sub_type": "client", "name": c.name, "role": c.role}
        else:
            claims = {
                "sub": user.user_id,
                "sub_type": "user",
                "name": user.email,
                "role": lower_role(c.role, user.role),
            }
        token = {
            "access_token": self.access_tokens.issue({**claims, "ws": c.workspace_id, "cid": c.id}),
            "token_type": "Bearer",
            "expires_in": self.access_tokens.ttl_s,
        }
        if user is not None and include_refresh_token:
            token["refresh_token"] = secrets.token_urlsafe(32)
            token["scope"] = SCOPE
        return token

    def save_token(self, token: dict[str, Any], request: OAuthRequest) -> None:
        refresh = token.get("refresh_token")
        if refresh is None:
            return
        previous: _Refresh | None = request.refresh_token
        self.grants.add_refresh(
            self.hash(REFRESH_PURPOSE, refresh),
            previous.record.family_id if previous else None,
            request.client.record.id,
            request.user.user_id,
            SCOPE,
            self.clock() + REFRESH_TTL,
        )

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Authlib's hook for framework signals: nothing listens."""

    def create_oauth2_request(self, request: OAuthRequest) -> OAuthRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Answer:
        return status, body, headers

    # ------------------------------------------------------------------ what the API calls
    def token(self, request: OAuthRequest) -> Answer:
        """A token request, as a sign-in: Busy (429) while the address has failed too often;
        an answer other than 200 counts as a failure (and may turn into Busy)."""
        address = request.source_address
        self.sign_ins.before(address)
        answer: Answer = self.create_token_response(request)
        status, body, _ = answer
        workspace_id, actor = self._caller(request)
        grant = request.payload.grant_type
        method = grant if grant in _METHODS else "unknown_grant"
        if status == 200:
            assert actor is not None  # a token is only issued to an authenticated client
            self.sign_ins.succeeded(address, workspace_id, actor, method)
        else:
            reason = body.get("error", "invalid_request") if isinstance(body, dict) else str(status)
            self.sign_ins.failed(address, workspace_id, actor, method, reason)
        return answer

    def _caller(self, request: OAuthRequest) -> tuple[str | None, Subject | None]:
        """(workspace, actor) a token request named: the signed-in user, else the client
        (authenticated or only named), else nobody."""
        record: ClientRecord | None = request.client.record if request.client else None
        if record is None:
            client_id = request.payload.client_id or extract_basic_authorization(request.headers)[0]
            record = self.users.client(client_id) if client_id else None
        if record is None:
            return None, None
        user: SignedIn | None = request.user
        if user is not None:
            return record.workspace_id, Subject("user", user.user_id, user.email)
        return record.workspace_id, Subject("client", record.id, record.name)

    def sign_in(self, request: OAuthRequest, email: str, password: str) -> UserCredentials | None:
        """The user whose password this is (None: a wrong one), for the client the page is
        for: Busy (429) while the address has failed too often; a wrong password, or a person
        who is not a member of the client's workspace (``authorize`` then denies them), is a
        failure on record (and may turn into Busy)."""
        address = request.source_address
        self.sign_ins.before(address)
        client = self.consent(request)
        user = self.users.check_password(email, password)
        member = None if user is None else self.users.member(client.workspace_id, user.id)
        if user is not None and member is not None:
            actor = Subject("user", user.id, user.email)
            self.sign_ins.succeeded(address, client.workspace_id, actor, PASSWORD_METHOD)
            return user
        # Filed under the client's workspace without naming the person: a non-member's account
        # is none of that workspace's business.
        reason = "wrong email or password" if user is None else "not a member of the workspace"
        self.sign_ins.failed(address, client.workspace_id, None, PASSWORD_METHOD, reason)
        return user

    def consent(self, request: OAuthRequest) -> ClientRecord:
        """The client a sign-in page is for; Authlib's OAuth2Error if the request is not one
        to answer with a page (unknown client, unregistered redirect URI, no S256 challenge)."""
        client: _Client = self.get_consent_grant(request).client
        return client.record

    def authorize(self, request: OAuthRequest, user: UserCredentials | None) -> Answer:
        """The answer to a consent form: a redirect with a code when ``user`` signed in and is
        a member of the client's workspace, else with ``access_denied``."""
        grant = self.get_consent_grant(request)
        signed_in = None if user is None else self.member(user.id, grant.client)
        answer: Answer = self.create_authorization_response(request, signed_in, grant)
        return answer

    def error_answer(self, request: OAuthRequest, error: Exception) -> Answer:
        answer: Answer = self.handle_error_response(request, error)
        return answer
