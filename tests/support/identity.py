"""``egress admin`` as a user runs it: a subprocess against a running server's data dir."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import subprocess
import sys

import httpx

from egress.domain.identity import Principal, Subject
from tests.conftest import Server


def egress_admin(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``egress admin ARGS`` with the server's environment (same database and keys)."""
    return subprocess.run(
        [sys.executable, "-m", "egress.cli.main", "admin", *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}: {result.stdout}{result.stderr}"
    return result.stdout


def create_workspace(server: Server, name: str) -> str:
    """The new workspace's id."""
    return _ok(egress_admin(server, "create-workspace", name)).strip()


def create_token(server: Server, workspace: str, role: str, *options: str) -> str:
    """A new token (the last line of the command's output)."""
    args = ("create-token", "--workspace", workspace, "--role", role, *options)
    return _ok(egress_admin(server, *args)).strip().splitlines()[-1]


def caller(workspace_id: str, role: str) -> Principal:
    """A caller with ``role`` for service calls made in-process (what a route would pass)."""
    return Principal(workspace_id, role, Subject("token", f"test-{role}", f"test {role}"))


_CSRF_FIELD = re.compile(r"name='csrf' value='([^']*)'")


def post_sign_in(
    http: httpx.Client, params: dict[str, str], form: dict[str, str]
) -> httpx.Response:
    """The sign-in form as a browser sends it: the page first (its cookie and hidden CSRF
    field, when it shows a form), then the form."""
    page = http.get("/oauth/authorize", params=params)
    found = _CSRF_FIELD.search(page.text)
    csrf = {"csrf": html.unescape(found.group(1))} if found else {}
    return http.post("/oauth/authorize", params=params, data={**form, **csrf})


def pkce() -> tuple[str, str]:
    """A PKCE (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(client_id: str, redirect_uri: str, challenge: str) -> dict[str, str]:
    """The query of an authorization code request with an S256 PKCE challenge."""
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
