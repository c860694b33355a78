"""/api/v1/me, /api/v1/tokens (personal access tokens), /api/v1/users and /api/v1/clients."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from egress.api.native.presenters_identity import (
    client_out,
    me_out,
    new_client_out,
    new_token_out,
    token_out,
    user_out,
)
from egress.api.native.routes.common import page_request
from egress.api.native.schemas import ListEnvelope
from egress.api.native.schemas_identity import (
    ClientCreate,
    ClientOut,
    MeOut,
    NewClientOut,
    NewTokenOut,
    TokenCreate,
    TokenOut,
    UserCreate,
    UserOut,
    UserPatch,
)
from egress.api.wiring import Admin, Editor, ServicesDep, Viewer
from egress.domain.paging import PageRequest

router = APIRouter(tags=["identity"])
Page = Annotated[PageRequest, Depends(page_request)]


@router.get("/api/v1/me", response_model=MeOut)
def me(s: ServicesDep, p: Viewer) -> MeOut:
    return me_out(p, s.identity.workspace_name(p.workspace_id))


@router.post("/api/v1/tokens", status_code=201, response_model=NewTokenOut)
def create_token(body: TokenCreate, s: ServicesDep, p: Editor) -> NewTokenOut:
    return new_token_out(s.identity.create_personal_token(p, body.name, body.role, body.expires_in))


@router.get("/api/v1/tokens", response_model=ListEnvelope[TokenOut])
def list_tokens(s: ServicesDep, p: Editor, page: Page) -> ListEnvelope[TokenOut]:
    """An admin sees every token of the workspace; an editor the ones acting for them."""
    result = s.identity.personal_tokens(p, page)
    items = [token_out(t) for t in result.items]
    return ListEnvelope.of(items, page.page, page.limit, result.total)


@router.delete("/api/v1/tokens/{token_id}", status_code=204)
def revoke_token(token_id: str, s: ServicesDep, p: Editor) -> Response:
    s.identity.revoke_personal_token(p, token_id)
    return Response(status_code=204)


@router.post("/api/v1/users", status_code=201, response_model=UserOut)
def create_user(body: UserCreate, s: ServicesDep, p: Admin) -> UserOut:
    return user_out(s.users.add(p.workspace_id, body.email, body.role, body.password, by=p))


@router.get("/api/v1/users", response_model=ListEnvelope[UserOut])
def list_users(s: ServicesDep, p: Admin, page: Page) -> ListEnvelope[UserOut]:
    result = s.users.list_page(p.workspace_id, page)
    return ListEnvelope.of([user_out(u) for u in result.items], page.page, page.limit, result.total)


@router.get("/api/v1/users/{user_id}", response_model=UserOut)
def get_user(user_id: str, s: ServicesDep, p: Admin) -> UserOut:
    return user_out(s.users.get(p.workspace_id, user_id))


@router.patch("/api/v1/users/{user_id}", response_model=UserOut)
def patch_user(user_id: str, body: UserPatch, s: ServicesDep, p: Admin) -> UserOut:
    return user_out(s.users.update(p.workspace_id, user_id, body.role, body.password, by=p))


@router.delete("/api/v1/users/{user_id}", status_code=204)
def remove_user(user_id: str, s: ServicesDep, p: Admin) -> Response:
    s.users.remove(p.workspace_id, user_id, by=p)
    return Response(status_code=204)


@router.post("/api/v1/clients", status_code=201, response_model=NewClientOut)
def create_client(body: ClientCreate, s: ServicesDep, p: Admin) -> NewClientOut:
    new = s.users.create_client(
        p.workspace_id, body.name, body.role, body.redirect_uris, public=body.public, by=p
    )
    return new_client_out(new)


@router.get("/api/v1/clients", response_model=ListEnvelope[ClientOut])
def list_clients(s: ServicesDep, p: Admin, page: Page) -> ListEnvelope[ClientOut]:
    result = s.users.clients_page(p.workspace_id, page)
    return ListEnvelope.of(
        [client_out(c) for c in result.items], page.page, page.limit, result.total
    )


@router.delete("/api/v1/clients/{client_id}", status_code=204)
def revoke_client(client_id: str, s: ServicesDep, p: Admin) -> Response:
    s.users.revoke_client(p.workspace_id, client_id, by=p)
    return Response(status_code=204)
