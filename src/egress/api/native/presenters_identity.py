"""Identity records as the native face shows them."""

from __future__ import annotations

from egress.api.native.schemas_identity import (
    ClientOut,
    MeOut,
    NewClientOut,
    NewTokenOut,
    SubjectOut,
    TokenOut,
    UserOut,
)
from egress.domain.identity import Principal, Subject
from egress.services.identity import NewToken, TokenRecord
from egress.services.users import ClientRecord, MemberRecord, NewClient


def subject_out(s: Subject) -> SubjectOut:
    return SubjectOut(type=s.type, id=s.id, name=s.name)


def me_out(p: Principal, workspace_name: str) -> MeOut:
    return MeOut(
        workspace_id=p.workspace_id,
        workspace_name=workspace_name,
        subject=subject_out(p.subject),
        role=p.role,
        auth_method=p.auth_method,
        on_behalf_of=subject_out(p.on_behalf_of) if p.on_behalf_of else None,
    )


def token_out(r: TokenRecord) -> TokenOut:
    creator = (
        SubjectOut(type=r.creator_type, id=r.creator_id, name=r.creator_name or "")
        if r.creator_type and r.creator_id
        else None
    )
    return TokenOut(
        id=r.id,
        name=r.name,
        role=r.role,
        kind="personal" if creator else "operator",
        creator=creator,
        created_at=r.created_at,
        expires_at=r.expires_at,
        revoked_at=r.revoked_at,
    )


def new_token_out(new: NewToken) -> NewTokenOut:
    return NewTokenOut(**token_out(new.record).model_dump(), token=new.token)


def user_out(m: MemberRecord) -> UserOut:
    return UserOut(
        id=m.id,
        email=m.email,
        role=m.role,
        has_password=m.has_password,
        created_at=m.created_at,
    )


def client_out(c: ClientRecord) -> ClientOut:
    return ClientOut(
        id=c.id,
        name=c.name,
        role=c.role,
        public=c.secret_hash is None,
        redirect_uris=c.redirect_uris,
        created_at=c.created_at,
        revoked_at=c.revoked_at,
    )


def new_client_out(new: NewClient) -> NewClientOut:
    return NewClientOut(
        **client_out(new.record).model_dump(), client_id=new.record.id, client_secret=new.secret
    )
