"""Authentication flows against a real server over a socket: OAuth 2.0 (client credentials,
authorization code + PKCE, refresh rotation), seed 001's /api/v3/token, personal access
tokens and /api/v1/me, and revocation taking effect on the next request (test servers run with
EGRESS_REVOCATION_CACHE_S=0; the cache's own window is tested in tests/unit/test_revocation.py).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from egress.access_tokens import AccessTokens
from egress.settings import Settings
from egress.signing import load_signing_ring
from tests.e2e.helpers import API, CONFIGS, anonymous, problem
from tests.security.conftest import Tenants
from tests.support.oauth import (
    PASSWORD,
    REDIRECT,
    authorization_code,
    authorize_params,
    exchange,
    pkce,
    post_sign_in,
    sign_in,
)


def _client(tenants: Tenants, role: str, **body: Any) -> dict[str, Any]:
    with tenants.client(tenants.a.admin) as http:
        r = http.post(f"{API}/clients", json={"name": f"c-{role}", "role": role, **body})
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    return made


def _basic(client_id: str, secret: str) -> dict[str, str]:
    pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def _me(tenants: Tenants, token: str) -> httpx.Response:
    with tenants.client(token) as http:
        return http.get(f"{API}/me")


def _bearer_client(tenants: Tenants, role: str) -> tuple[dict[str, Any], str]:
    client = _client(tenants, role)
    with anonymous(tenants.server) as http:
        r = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers=_basic(client["clientId"], client["clientSecret"]),
        )
    assert r.status_code == 200, r.text
    return client, str(r.json()["access_token"])


# --- client credentials, /api/v3/token, JWTs ---------------------------------------------------


def test_client_credentials_give_a_short_lived_jwt_acting_as_the_client(tenants: Tenants) -> None:
    client, token = _bearer_client(tenants, "editor")
    me = _me(tenants, token)
    assert me.status_code == 200, me.text
    assert me.json() == {
        "workspaceId": tenants.a.id,
        "workspaceName": "alpha",
        "subject": {"type": "client", "id": client["clientId"], "name": "c-editor"},
        "role": "editor",
        "authMethod": "oauth",
        "onBehalfOf": None,
    }
    header = token.split(".")[0]
    kid = httpx.get(f"{tenants.server.base_url}/oauth/jwks.json").json()["keys"][0]["kid"]
    assert base64.urlsafe_b64decode(header + "==").decode().count(kid) == 1
    with tenants.client(token) as http:  # an editor: may list, not manage connections
        assert http.get(f"{API}/connections").status_code == 200
        problem(http.post(f"{API}/connections", json={}), 403)


def test_seed_token_endpoint_takes_basic_credentials(tenants: Tenants) -> None:
    client = _client(tenants, "viewer")
    with anonymous(tenants.server) as http:
        r = http.post("/api/v3/token", headers=_basic(client["clientId"], client["clientSecret"]))
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"access_token", "token_type", "expires_in"}
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
        assert _me(tenants, body["access_token"]).json()["role"] == "viewer"
        wrong = http.post("/api/v3/token", headers=_basic(client["clientId"], "egs_wrong"))
        assert "invalid_client" in problem(wrong, 401)["detail"]
        problem(http.post("/api/v3/token"), 401)


def test_wrong_secret_and_unknown_grant_are_refused_the_oauth_way(tenants: Tenants) -> None:
    client = _client(tenants, "viewer")
    with anonymous(tenants.server) as http:
        wrong = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers=_basic(client["clientId"], "nope"),
        )
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        password = http.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "a", "password": "b"},
            headers=_basic(client["clientId"], client["clientSecret"]),
        )
        assert password.status_code == 400
        assert password.json()["error"] == "unsupported_grant_type"
        twice = http.post(
            "/oauth/token",
            content="grant_type=client_credentials&grant_type=client_credentials",
            headers={"Content-Type": "application/x-www-form-urlencoded"}
            | _basic(client["clientId"], client["clientSecret"]),
        )
        assert problem(twice, 400, "grant_type")["detail"].endswith("more than once")
        not_utf8 = {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:x").decode()}
        grant = {"grant_type": "client_credentials"}
        for path in ("/oauth/token", "/api/v3/token"):
            problem(http.post(path, data=grant, headers=not_utf8), 400, "header.authorization")


def test_revoking_a_client_stops_its_access_tokens(tenants: Tenants) -> None:
    client, token = _bearer_client(tenants, "viewer")
    assert _me(tenants, token).status_code == 200
    with tenants.client(tenants.a.admin) as http:
        assert http.delete(f"{API}/clients/{client['clientId']}").status_code == 204
    assert "revoked" in problem(_me(tenants, token), 401)["detail"]


def test_tampered_and_expired_access_tokens_are_401(tenants: Tenants) -> None:
    _, token = _bearer_client(tenants, "admin")
    head, payload, sig = token.split(".")
    claims = base64.urlsafe_b64decode(payload + "==").replace(b'"admin"', b'"xdmin"')
    forged = base64.urlsafe_b64encode(claims).rstrip(b"=").decode()
    assert "not valid" in problem(_me(tenants, f"{head}.{forged}.{sig}"), 401)["detail"]
    # The server's own key, used with a clock two hours back: a real but expired token.
    ring = load_signing_ring(Settings(data_dir=tenants.server.data_dir))
    then = datetime.now(UTC) - timedelta(hours=2)
    claims_now = {"sub": "x", "sub_type": "client", "ws": tenants.a.id, "role": "admin"}
    old = AccessTokens(ring, lambda: then, 3600).issue(claims_now)
    assert "expired" in problem(_me(tenants, old), 401)["detail"]


def test_another_workspaces_client_token_sees_only_its_workspace(tenants: Tenants) -> None:
    with tenants.client(tenants.b.admin) as http:
        r = http.post(f"{API}/clients", json={"name": "b", "role": "admin"})
        client = r.json()
        t = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers=_basic(client["clientId"], client["clientSecret"]),
        ).json()["access_token"]
    assert _me(tenants, t).json()["workspaceName"] == "beta"
    with tenants.client(tenants.a.admin) as http:
        a_clients = [c["id"] for c in http.get(f"{API}/clients").json()["data"]]
    with tenants.client(t) as http:
        problem(http.delete(f"{API}/clients/{a_clients[0]}"), 404)


# --- authorization code + PKCE, refresh rotation ------------------------------------------------


@pytest.fixture(scope="module")
def browser_app(tenants: Tenants) -> dict[str, Any]:
    """A public client (PKCE, no secret) and a user of workspace A with a password."""
    with tenants.client(tenants.a.admin) as http:
        user = http.post(
            f"{API}/users",
            json={"email": "Ada@Example.test", "role": "editor", "password": PASSWORD},
        )
        assert user.status_code == 201, user.text
        assert user.json()["email"] == "ada@example.test" and user.json()["hasPassword"]
    client = _client(tenants, "admin", public=True, redirectUris=[REDIRECT])
    assert client["clientSecret"] is None
    return {"client_id": client["clientId"], "user_id": user.json()["id"]}


def test_authorization_code_with_pkce_signs_a_user_in(
    tenants: Tenants, browser_app: dict[str, Any]
) -> None:
    verifier, challenge = pkce()
    with anonymous(tenants.server) as http:
        http.follow_redirects = False
        code = authorization_code(http, browser_app, challenge)
        r = exchange(http, browser_app, code, verifier)
        assert r.status_code == 200, r.text
        tokens = r.json()
        assert tokens["token_type"] == "Bearer" and tokens["refresh_token"]
        # The code is good once.
        again = exchange(http, browser_app, code, verifier)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    me = _me(tenants, tokens["access_token"]).json()
    assert me["subject"] == {
        "type": "user",
        "id": browser_app["user_id"],
        "name": "ada@example.test",
    }
    assert me["role"] == "editor"  # the user's role: lower than the client's admin


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
    ],
)
def test_authorization_requests_without_an_s256_challenge_are_refused(
    tenants: Tenants, browser_app: dict[str, Any], change: dict[str, str], error: str
) -> None:
    _, challenge = pkce()
    params = authorize_params(browser_app, challenge) | change
    with anonymous(tenants.server) as http:
        r = http.get("/oauth/authorize", params=params)
    assert r.status_code == 302, r.text  # to the registered redirect URI, with the error
    assert parse_qs(urlsplit(r.headers["location"]).query)["error"] == [error]


def test_wrong_redirect_uri_is_never_redirected_to(
    tenants: Tenants, browser_app: dict[str, Any]
) -> None:
    _, challenge = pkce()
    params = authorize_params(browser_app, challenge, redirect_uri="https://evil.test/cb")
    with anonymous(tenants.server) as http:
        r = http.get("/oauth/authorize", params=params)
        assert r.status_code == 400 and "location" not in r.headers
        assert "redirect" in r.text.lower()
        posted = sign_in(http, params)
        assert posted.status_code == 400 and "location" not in posted.headers


def test_pkce_failures_and_a_wrong_password(tenants: Tenants, browser_app: dict[str, Any]) -> None:
    verifier, challenge = pkce()
    with anonymous(tenants.server) as http:
        wrong = sign_in(http, authorize_params(browser_app, challenge), password="not it at all")
        assert wrong.status_code == 401 and "not right" in wrong.text
        code = authorization_code(http, browser_app, challenge)
        # Its last character changed (an "x" stays one in 1 of 64 verifiers: then a "y").
        other = "y" if verifier.endswith("x") else "x"
        bad = exchange(http, browser_app, code, verifier[:-1] + other)
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
        missing = http.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "client_id": browser_app["client_id"],
            },
        )
        assert missing.status_code == 400, missing.text
        other_uri = exchange(
            http, browser_app, authorization_code(http, browser_app, challenge), verifier
        )
        assert other_uri.status_code == 200  # control: the right verifier works


def test_refresh_tokens_rotate_and_a_reused_one_revokes_the_family(
    tenants: Tenants, browser_app: dict[str, Any]
) -> None:
    verifier, challenge = pkce()
    with anonymous(tenants.server) as http:
        first = exchange(
            http, browser_app, authorization_code(http, browser_app, challenge), verifier
        ).json()

        def refresh(token: str) -> httpx.Response:
            return http.post(
                "/oauth/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": token,
                    "client_id": browser_app["client_id"],
                },
            )

        second = refresh(first["refresh_token"])
        assert second.status_code == 200, second.text
        rotated = second.json()["refresh_token"]
        assert rotated != first["refresh_token"]
        assert _me(tenants, second.json()["access_token"]).status_code == 200
        replay = refresh(first["refresh_token"])  # the old one again: a stolen copy
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        after = refresh(rotated)  # the family is revoked: the legitimate one too
        assert after.status_code == 400 and after.json()["error"] == "invalid_grant"


def _user_token(tenants: Tenants, admin: str, email: str) -> str:
    """An access token of the user, signed in with a new public client of ``admin``'s
    workspace."""
    with tenants.client(admin) as http:
        body = {"name": "web", "role": "admin", "public": True, "redirectUris": [REDIRECT]}
        app = {"client_id": http.post(f"{API}/clients", json=body).json()["clientId"]}
    verifier, challenge = pkce()
    with anonymous(tenants.server) as http:
        form = {"email": email, "password": PASSWORD, "decision": "allow"}
        r = post_sign_in(http, authorize_params(app, challenge), form)
        code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
        return str(exchange(http, app, code, verifier).json()["access_token"])


def test_removing_a_user_stops_their_access_tokens(tenants: Tenants) -> None:
    with tenants.client(tenants.a.admin) as http:
        user = http.post(
            f"{API}/users",
            json={"email": "bo@example.test", "role": "viewer", "password": PASSWORD},
        ).json()
    token = _user_token(tenants, tenants.a.admin, "bo@example.test")
    assert _me(tenants, token).status_code == 200
    with tenants.client(tenants.a.admin) as http:
        assert http.delete(f"{API}/users/{user['id']}").status_code == 204
    problem(_me(tenants, token), 401)


def test_ending_a_users_access_in_one_workspace_keeps_their_other_ones(tenants: Tenants) -> None:
    body = {"email": "di@example.test", "role": "editor", "password": PASSWORD}
    with tenants.client(tenants.a.admin) as a:
        user = a.post(f"{API}/users", json=body).json()
    with tenants.client(tenants.b.admin) as b:
        assert b.post(f"{API}/users", json=body | {"password": None}).status_code == 201
    in_a, in_b = (_user_token(tenants, t.admin, body["email"]) for t in (tenants.a, tenants.b))
    assert _me(tenants, in_a).json()["role"] == _me(tenants, in_b).json()["role"] == "editor"
    with tenants.client(tenants.a.admin) as a:  # a lower role in A ends A's tokens only
        assert a.patch(f"{API}/users/{user['id']}", json={"role": "viewer"}).status_code == 200
    problem(_me(tenants, in_a), 401)
    assert _me(tenants, in_b).json()["role"] == "editor"
    with tenants.client(tenants.a.admin) as a:  # and so does leaving A
        assert a.delete(f"{API}/users/{user['id']}").status_code == 204
    me = _me(tenants, in_b).json()
    assert (me["workspaceId"], me["role"]) == (tenants.b.id, "editor")


def test_metadata_document_points_at_the_endpoints(tenants: Tenants) -> None:
    doc = httpx.get(f"{tenants.server.base_url}/.well-known/oauth-authorization-server").json()
    assert doc["token_endpoint"] == f"{tenants.server.base_url}/oauth/token"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert "password" not in doc["grant_types_supported"]
    keys = httpx.get(doc["jwks_uri"]).json()["keys"]
    assert keys and all(k["kty"] == "EC" and "d" not in k for k in keys)


# --- personal access tokens and /me ------------------------------------------------------------


def test_personal_token_acts_for_its_creator_with_at_most_its_role(tenants: Tenants) -> None:
    with tenants.client(tenants.a.editor) as http:
        made = http.post(f"{API}/tokens", json={"name": "ci", "role": "viewer", "expiresIn": 30})
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["token"].startswith("egp_") and body["kind"] == "personal"
        problem(http.post(f"{API}/tokens", json={"name": "up", "role": "admin"}), 403)
        listed = http.get(f"{API}/tokens").json()["data"]
        assert [t["name"] for t in listed] == ["ci"]  # an editor sees their own only
        assert "token" not in listed[0]
    me = _me(tenants, body["token"]).json()
    assert me["subject"] == {"type": "token", "id": body["id"], "name": "ci"}
    assert me["role"] == "viewer" and me["authMethod"] == "personal_token"
    assert me["onBehalfOf"]["type"] == "token" and me["onBehalfOf"]["name"] == "alpha-editor"
    with tenants.client(body["token"]) as http:
        problem(http.post(f"{CONFIGS}/x/executions"), 403)
    with tenants.client(tenants.b.admin) as http:  # another workspace: not even visible
        problem(http.delete(f"{API}/tokens/{body['id']}"), 404)
    with tenants.client(tenants.a.editor) as http:
        assert http.delete(f"{API}/tokens/{body['id']}").status_code == 204
    assert "revoked" in problem(_me(tenants, body["token"]), 401)["detail"]


def test_a_personal_token_stops_when_its_creator_does(tenants: Tenants) -> None:
    client, access = _bearer_client(tenants, "editor")
    with tenants.client(access) as http:
        made = http.post(f"{API}/tokens", json={"name": "made-by-a-client"}).json()
    with tenants.client(made["token"]) as http:  # made with a personal token: same creator
        child = http.post(f"{API}/tokens", json={"name": "child"}).json()
    for token in (made, child):
        behalf = _me(tenants, token["token"]).json()["onBehalfOf"]
        assert behalf == {"type": "client", "id": client["clientId"], "name": "c-editor"}
    with tenants.client(tenants.a.admin) as http:  # an admin sees and may revoke any token
        names = {
            t["name"] for t in http.get(f"{API}/tokens", params={"limit": 1000}).json()["data"]
        }
        assert {"made-by-a-client", "child"} <= names
        assert http.delete(f"{API}/clients/{client['clientId']}").status_code == 204
    for token in (made, child):
        assert "creator" in problem(_me(tenants, token["token"]), 401)["detail"]


def test_bootstrap_and_operator_tokens_keep_working(tenants: Tenants) -> None:
    me = _me(tenants, tenants.server.token).json()
    assert me["workspaceName"] == "default" and me["authMethod"] == "token"
    assert me["subject"]["type"] == "token" and me["role"] == "admin"


def test_a_user_of_two_workspaces_keeps_their_own_password(tenants: Tenants) -> None:
    body = {"email": "cy@example.test", "role": "viewer", "password": PASSWORD}
    with tenants.client(tenants.a.admin) as a:
        user = a.post(f"{API}/users", json=body).json()
        problem(a.post(f"{API}/users", json=body | {"password": None}), 409)  # a member already
    with tenants.client(tenants.b.admin) as b:
        problem(b.post(f"{API}/users", json=body), 409)  # cannot set another's password
        joined = b.post(f"{API}/users", json=body | {"password": None, "role": "admin"})
        assert joined.status_code == 201 and joined.json()["id"] == user["id"]
        assert joined.json()["hasPassword"] and joined.json()["role"] == "admin"
    with tenants.client(tenants.a.admin) as a:
        problem(a.patch(f"{API}/users/{user['id']}", json={"password": "x" * 20}), 409)
        changed = a.patch(f"{API}/users/{user['id']}", json={"role": "editor"})
        assert changed.json()["role"] == "editor"
        emails = [u["email"] for u in a.get(f"{API}/users").json()["data"]]
        assert "cy@example.test" in emails
        problem(a.post(f"{API}/users", json=body | {"password": "short"}), 422, "password")
    with tenants.client(tenants.b.admin) as b:  # B's membership is B's own
        assert b.get(f"{API}/users/{user['id']}").json()["role"] == "admin"
