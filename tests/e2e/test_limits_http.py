"""Fair-use limits across two API processes sharing one PostgreSQL metadata database: the
token buckets live in that database, so a user's triggers and an address's failed sign-ins
count against one limit whichever replica answers. 429 problems carry Retry-After."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from egress.signing import new_signing_key_entry
from tests.conftest import PgDatabase, Server
from tests.e2e.helpers import (
    API,
    CONFIGS,
    api,
    configuration,
    problem,
    running_server,
    sqlite_connection,
    template,
)
from tests.support.identity import create_token
from tests.support.oauth import authorize_query, pkce, post_sign_in

SIGNING_KEYS = new_signing_key_entry()
REDIRECT = "http://127.0.0.1:9/callback"
# 3 triggers a minute: one every 20 s; 2 failed sign-ins a minute: one every 30 s; one run of
# the workspace queued or running at a time (no worker runs them here).
LIMITS = {
    "EGRESS_TRIGGERS_PER_MINUTE": "3",
    "EGRESS_FAILED_SIGNINS_PER_MINUTE": "2",
    "EGRESS_MAX_RUNS_PER_WORKSPACE": "1",
}


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, pg_factory: object
) -> Iterator[tuple[Server, Server]]:
    db: PgDatabase = pg_factory("egress_limits")  # type: ignore[operator]
    env = {"EGRESS_DATABASE_URL": db.sqlalchemy_url, "EGRESS_SIGNING_KEYS": SIGNING_KEYS, **LIMITS}
    with ExitStack() as stack:
        a, b = (
            stack.enter_context(
                running_server(tmp_path_factory.mktemp(name), args=("--no-worker",), env=env)
            )
            for name in ("replica-a", "replica-b")
        )
        yield a, b


def _from(server: Server, address: str, token: str | None = None) -> httpx.Client:
    """A client whose requests come from ``address`` (any 127.0.0.0/8 address is local)."""
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {token}"} if token else {},
        transport=httpx.HTTPTransport(local_address=address),
        timeout=30,
    )


def test_a_users_triggers_are_limited_across_replicas(
    replicas: tuple[Server, Server], tmp_path_factory: pytest.TempPathFactory
) -> None:
    a, b = replicas
    db = tmp_path_factory.mktemp("limits-db") / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    with api(a) as admin:
        tpl = template(admin, sqlite_connection(admin, db, "t"), "main.t")["id"]
        cfg = configuration(admin, tpl, "limited")
        other_cfg = configuration(admin, tpl, "another")
    editor = create_token(a, "default", "editor")
    url = f"{CONFIGS}/{cfg}/executions"
    with api(a, editor) as on_a, api(b, editor) as on_b:
        first, second, _ = (c.post(url) for c in (on_a, on_b, on_a))
        assert [r.status_code for r in (first, second, _)] == [202, 202, 202]
        assert first.json()["runs"][0]["holdReason"] is None
        assert second.json()["runs"][0]["status"] == "ON_HOLD"
        assert second.json()["runs"][0]["holdReason"] == (
            "waiting for the configuration's queued or running run to end"
        )
        refused = on_b.post(url)
        body = problem(refused, 429)
        assert 1 <= int(refused.headers["retry-after"]) <= 20  # a token every 20 s
        assert "at most 3 a minute per user" in body["detail"]
        assert on_a.post(url).status_code == 429
    # Another user's triggers have a bucket of their own; its run waits for the workspace's
    # only slot, which a run of the first configuration holds.
    with api(b) as admin_on_b:
        r = admin_on_b.post(f"{CONFIGS}/{other_cfg}/executions")
        assert r.status_code == 202, r.text
        assert (r.json()["runs"][0]["status"], r.json()["runs"][0]["holdReason"]) == (
            "ON_HOLD",
            "waiting for a free slot: the workspace has 1 runs queued or running "
            "(EGRESS_MAX_RUNS_PER_WORKSPACE)",
        )


def test_failed_sign_ins_are_limited_per_address_across_replicas(
    replicas: tuple[Server, Server],
) -> None:
    a, b = replicas
    with (
        _from(a, "127.0.0.2", "egr_guess1") as guess_a,
        _from(b, "127.0.0.2", "egr_guess2") as guess_b,
    ):
        assert problem(guess_a.get(f"{API}/connections"), 401)
        assert problem(guess_b.get(f"{API}/connections"), 401)
        refused = guess_a.get(f"{API}/connections")
        body = problem(refused, 429)
        assert 1 <= int(refused.headers["retry-after"]) <= 30  # one every 30 s
        assert "too many failed sign-ins from this address" in body["detail"]
    # While it lasts, that address gets nowhere, even with a valid token...
    with _from(b, "127.0.0.2", a.token) as same_address:
        problem(same_address.get(f"{API}/connections"), 429)
    # ...and every other address is unaffected.
    with _from(b, "127.0.0.3", a.token) as elsewhere:
        assert elsewhere.get(f"{API}/connections").status_code == 200


def test_oauth_sign_ins_count_against_the_same_address_limit(
    replicas: tuple[Server, Server],
) -> None:
    """The token endpoints (problem JSON) and the sign-in page (an HTML page saying so) share
    the failed sign-in limit of the address, across replicas, with Retry-After."""
    a, b = replicas
    with api(a) as admin:
        client = admin.post(f"{API}/clients", json={"name": "etl", "role": "viewer"}).json()
        body = {"email": "limited@example.test", "role": "viewer", "password": "p" * 16}
        assert admin.post(f"{API}/users", json=body).status_code == 201
        web_body = {"name": "web", "role": "viewer", "public": True, "redirectUris": [REDIRECT]}
        web = admin.post(f"{API}/clients", json=web_body).json()["clientId"]
    wrong = (client["clientId"], "egs_wrong")
    with _from(a, "127.0.0.4") as on_a, _from(b, "127.0.0.4") as on_b:
        grant = {"grant_type": "client_credentials"}
        assert on_a.post("/oauth/token", data=grant, auth=wrong).status_code == 401
        problem(on_b.post("/api/v3/token", auth=wrong), 401)
        refused = on_a.post("/api/v3/token", auth=(client["clientId"], client["clientSecret"]))
        assert "too many failed sign-ins" in problem(refused, 429)["detail"]
        assert 1 <= int(refused.headers["retry-after"]) <= 30
        problem(on_b.post("/oauth/token", data=grant, auth=wrong), 429)
    _, challenge = pkce()
    params = authorize_query(web, REDIRECT, challenge)
    form = {"email": body["email"], "password": "not it", "decision": "allow"}
    with _from(b, "127.0.0.5") as browser:
        assert [post_sign_in(browser, params, form).status_code for _ in range(2)] == [401, 401]
        page = post_sign_in(browser, params, {**form, "password": body["password"]})
        assert page.status_code == 429 and "Too many sign-in attempts" in page.text
        assert page.headers["content-type"].startswith("text/html")
        assert 1 <= int(page.headers["retry-after"]) <= 30
