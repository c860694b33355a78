"""Bodies of the identity routes: the caller, personal tokens, users and OAuth clients."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from egress.api.native.wire import Name, Request, Wire
from egress.domain.identity import MAX_TOKEN_DAYS, MIN_PASSWORD_LENGTH

Role = Literal["admin", "editor", "viewer"]


class SubjectOut(Wire):
    type: str = Field(description="user | client | token | system")
    id: str
    name: str


class MeOut(Wire):
    workspace_id: str
    workspace_name: str
    subject: SubjectOut
    role: Role
    auth_method: str = Field(description="token | personal_token | oauth")
    on_behalf_of: SubjectOut | None = Field(
        default=None, description="a personal token's creator: whom the rules count"
    )


class TokenCreate(Request):
    name: str = Name
    role: Role | None = Field(default=None, description="default: the caller's role")
    expires_in: int | None = Field(
        default=None, ge=1, le=MAX_TOKEN_DAYS, description="days; default: never"
    )


class TokenOut(Wire):
    id: str
    name: str
    role: Role = Field(description="as made; it acts with at most its creator's current role")
    kind: Literal["operator", "personal"]
    creator: SubjectOut | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class NewTokenOut(TokenOut):
    token: str = Field(description="shown only now; only its keyed hash is stored")


class UserCreate(Request):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+$")
    role: Role
    password: str | None = Field(default=None, min_length=MIN_PASSWORD_LENGTH, max_length=1024)


class UserPatch(Request):
    role: Role | None = None
    password: str | None = Field(default=None, min_length=MIN_PASSWORD_LENGTH, max_length=1024)


class UserOut(Wire):
    id: str
    email: str
    role: Role
    has_password: bool
    created_at: datetime


class ClientCreate(Request):
    name: str = Name
    role: Role
    redirect_uris: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="for the authorization code flow; none: a machine client",
    )
    public: bool = Field(
        default=False,
        description="a browser app without a secret (authorization code + PKCE only)",
    )


class ClientOut(Wire):
    id: str = Field(description="the client id")
    name: str
    role: Role
    public: bool
    redirect_uris: list[str]
    created_at: datetime
    revoked_at: datetime | None


class NewClientOut(ClientOut):
    client_id: str
    client_secret: str | None = Field(description="shown only now; None for a public client")
