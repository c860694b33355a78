"""The OAuth 2.0 authorization code flow with PKCE as a browser goes through it: the sign-in
page, the redirect with the code, the exchange for tokens."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

REDIRECT = "http://127.0.0.1:9/callback"
PASSWORD = "correct horse battery"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(app: dict[str, Any], challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "s1",
        **extra,
    }


def sign_in(http: httpx.Client, params: dict[str, str], password: str = PASSWORD) -> httpx.Response:
    form = {"email": "ada@example.test", "password": password, "decision": "allow"}
    return http.post("/oauth/authorize", params=params, data=form)


def authorization_code(http: httpx.Client, app: dict[str, Any], challenge: str) -> str:
    page = http.get("/oauth/authorize", params=authorize_params(app, challenge))
    assert page.status_code == 200 and "Sign in" in page.text, page.text
    assert page.headers["x-frame-options"] == "DENY"
    r = sign_in(http, authorize_params(app, challenge))
    assert r.status_code == 302, r.text
    location = urlsplit(r.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def exchange(http: httpx.Client, app: dict[str, Any], code: str, verifier: str) -> httpx.Response:
    return http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": app["client_id"],
            "code_verifier": verifier,
        },
    )
