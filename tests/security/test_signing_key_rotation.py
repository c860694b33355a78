"""``egress admin rotate-signing-key`` on a real server's data dir: after a restart the new key
signs access tokens, and tokens and secrets made under the old key keep working."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.e2e.helpers import API, anonymous, running_server
from tests.support.identity import egress_admin
from tests.support.oauth import post_sign_in

REDIRECT = "http://127.0.0.1:9/cb"


def _kid(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def _access_token(base_url: str, client: dict[str, str]) -> str:
    r = httpx.post(f"{base_url}/api/v3/token", auth=(client["clientId"], client["clientSecret"]))
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _signed_in_refresh_token(base_url: str, admin: httpx.Client) -> tuple[str, str]:
    """A user's refresh token by the authorization code flow: (client id, refresh token)."""
    body = {"email": "rot@example.test", "role": "viewer", "password": "x" * 16}
    assert admin.post(f"{API}/users", json=body).status_code == 201
    app = admin.post(
        f"{API}/clients",
        json={"name": "web", "role": "viewer", "public": True, "redirectUris": [REDIRECT]},
    ).json()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": app["clientId"],
        "redirect_uri": REDIRECT,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    form = {"email": body["email"], "password": body["password"], "decision": "allow"}
    with httpx.Client(base_url=base_url) as browser:
        signed_in = post_sign_in(browser, params, form)
    code = parse_qs(urlsplit(signed_in.headers["location"]).query)["code"][0]
    tokens = httpx.post(
        f"{base_url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": app["clientId"],
            "code_verifier": verifier,
        },
    ).json()
    return app["clientId"], tokens["refresh_token"]


def test_rotation_keeps_old_tokens_and_signs_new_ones_with_the_new_key(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        with server.client() as http:
            made = http.post(f"{API}/clients", json={"name": "etl", "role": "viewer"})
            assert made.status_code == 201, made.text
            client = made.json()
            personal = http.post(f"{API}/tokens", json={"name": "kept"}).json()["token"]
            web_client, refresh = _signed_in_refresh_token(server.base_url, http)
        old = _access_token(server.base_url, client)
        (old_key,) = [
            k["kid"] for k in httpx.get(f"{server.base_url}/oauth/jwks.json").json()["keys"]
        ]
        assert _kid(old) == old_key
        rotated = egress_admin(server, "rotate-signing-key")
        assert rotated.returncode == 0, rotated.stderr
    with running_server(tmp_path) as server:  # same data dir, restarted
        kids = [k["kid"] for k in httpx.get(f"{server.base_url}/oauth/jwks.json").json()["keys"]]
        assert len(kids) == 2 and kids[1] == old_key
        with anonymous(server) as http:
            for token in (old, personal):  # signed / hashed under the old key: still good
                me = http.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})
                assert me.status_code == 200, me.text
        new = _access_token(server.base_url, client)  # the client's secret survives too
        assert _kid(new) == kids[0] != old_key
        refreshed = httpx.post(  # a refresh token from before the rotation still refreshes
            f"{server.base_url}/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": web_client},
        )
        assert refreshed.status_code == 200, refreshed.text
        assert _kid(refreshed.json()["access_token"]) == kids[0]
