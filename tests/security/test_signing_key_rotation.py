"""``egress admin rotate-signing-key`` on a real server's data dir: after a restart the new key
signs access tokens, and tokens and secrets made under the old key keep working."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx

from tests.e2e.helpers import API, anonymous, running_server
from tests.support.identity import egress_admin


def _kid(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def _access_token(base_url: str, client: dict[str, str]) -> str:
    r = httpx.post(f"{base_url}/api/v3/token", auth=(client["clientId"], client["clientSecret"]))
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_rotation_keeps_old_tokens_and_signs_new_ones_with_the_new_key(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        with server.client() as http:
            made = http.post(f"{API}/clients", json={"name": "etl", "role": "viewer"})
            assert made.status_code == 201, made.text
            client = made.json()
            personal = http.post(f"{API}/tokens", json={"name": "kept"}).json()["token"]
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
