"""The OAuth 2.0 authorization code flow with PKCE as a browser goes through it: the sign-in
page, the redirect with the code, the exchange for tokens."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

REDIRECT = "http://127.0.0.1:9/callback"
PASSWORD = "correct horse battery"


_CSRF_FIELD = re.compile(r"name='csrf' value='([^']*)'")


def pkce() -> tuple[str, str]:
    """A PKCE (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_query(client_id: str, redirect_uri: str, challenge: str) -> dict[str, str]:
    """The query of an authorization code request with an S256 PKCE challenge."""
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


def authorize_params(app: dict[str, Any], challenge: str, **extra: str) -> dict[str, str]:
    return authorize_query(app["client_id"], REDIRECT, challenge) | {"state": "s1", **extra}


def post_sign_in(
    http: httpx.Client, params: dict[str, str], form: dict[str, str]
) -> httpx.Response:
    """The sign-in form as a browser sends it: the page first (its cookie and hidden CSRF
    field, when it shows a form), then the form."""
    page = http.get("/oauth/authorize", params=params)
    found = _CSRF_FIELD.search(page.text)
    csrf = {"csrf": html.unescape(found.group(1))} if found else {}
    return http.post("/oauth/authorize", params=params, data={**form, **csrf})


def sign_in(http: httpx.Client, params: dict[str, str], password: str = PASSWORD) -> httpx.Response:
    form = {"email": "ada@example.test", "password": password, "decision": "allow"}
    return post_sign_in(http, params, form)


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
