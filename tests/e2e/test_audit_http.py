"""The audit trail over HTTP: every audited action of a real session — CLI and personal token
changes, connections, configurations, triggers, a cancel, a re-run, file, zip and signed-link
downloads, failed bearer sign-ins, users, roles and clients, OAuth sign-ins — appears once,
with actor, object, outcome and source address; admins read it with filters and pages,
editors are refused. ``triggeredBy`` names the caller."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import Server, wait_for_status
from tests.e2e.helpers import (
    API,
    CONFIGS,
    DONE,
    anonymous,
    api,
    configuration,
    problem,
    running_server,
    sqlite_connection,
    template,
    trigger,
)
from tests.support.identity import create_token, create_workspace, egress_admin
from tests.support.oauth import authorize_query, pkce, post_sign_in

OPERATOR = {"type": "operator", "id": "cli", "name": "egress admin"}
LOCAL = "127.0.0.1"
REDIRECT = "http://127.0.0.1:9/callback"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # No worker: a triggered run stays PENDING until the test starts one, so cancel is certain.
    with running_server(tmp_path_factory.mktemp("audit"), args=("--no-worker",)) as s:
        yield s


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit-db") / "small.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, grp TEXT NOT NULL)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, "ab"[i % 2]) for i in range(6)])
    return path


@contextmanager
def worker(server: Server) -> Iterator[None]:
    """A real `egress worker` on the server's database while the block runs."""
    log = server.data_dir.parent / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "egress.cli.main", "worker"],
            env=server.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert "Traceback" not in log.read_text()


def _token_ids(server: Server) -> dict[str, str]:
    """Token name → id, as ``egress admin list-tokens`` shows them."""
    out = egress_admin(server, "list-tokens").stdout.splitlines()
    return {line.split()[2]: line.split()[0] for line in out[1:]}


def _entry(e: dict[str, Any]) -> tuple[Any, ...]:
    return (e["action"], e["actor"], e["object"], e["outcome"], e["sourceAddress"], e["detail"])


def test_every_audited_action_is_on_record_once(server: Server, db: Path) -> None:
    editor_token = create_token(server, "default", "editor", "--name", "ed")
    ids = _token_ids(server)
    editor_id = ids["ed"]
    admin = {"type": "token", "id": ids["bootstrap"], "name": "bootstrap"}
    editor = {"type": "token", "id": editor_id, "name": "ed"}
    http, ed = api(server), api(server, editor_token)

    conn = sqlite_connection(http, db, "small")
    r = http.patch(f"{API}/connections/{conn}", json={"name": "small db"})
    assert r.status_code == 200, r.text
    tpl = template(http, conn, "main.t")["id"]
    r = http.post(
        CONFIGS,
        json={
            "name": "plain",
            "templateId": tpl,
            "format": "csv",
            "destination": {"type": "storage", "path": "out"},
        },
    )
    assert r.status_code == 201, r.text
    cfg = r.json()["id"]
    r = http.patch(f"{CONFIGS}/{cfg}", json={"fileNamePattern": "t_{run}.{ext}"})
    assert r.status_code == 200, r.text
    assert http.post(f"{CONFIGS}/{cfg}/submit").status_code == 200

    cancelled = trigger(ed, cfg)
    assert cancelled["triggeredBy"] == editor and cancelled["trigger"] == "api"
    r = ed.post(f"{CONFIGS}/{cfg}/executions/{cancelled['id']}/cancel")
    assert r.status_code == 202 and r.json()["latestStatus"] == "CANCELLED", r.text

    split_cfg = configuration(http, tpl, "split", splitBy="grp")
    with worker(server):
        done = trigger(http, cfg)
        assert done["triggeredBy"] == admin
        details = wait_for_status(http, cfg, done["id"], DONE)
        zipped = wait_for_status(http, split_cfg, trigger(http, split_cfg)["id"], DONE)
    assert details["latestStatus"] == zipped["latestStatus"] == "COMPLETED"
    file = details["runs"][0]["file"]
    assert http.get(file["downloadUrl"]).status_code == 200
    with anonymous(server) as browser:
        assert browser.get(file["signedUrl"]).status_code == 200
    assert http.get(zipped["runs"][0]["file"]["downloadUrl"]).status_code == 200
    r = http.post(f"{CONFIGS}/{cfg}/executions/{done['id']}/rerun")
    assert r.status_code == 202, r.text

    doomed = sqlite_connection(http, db, "doomed")
    assert http.delete(f"{API}/connections/{doomed}").status_code == 204
    doomed_cfg = configuration(http, tpl, "doomed")
    assert http.delete(f"{CONFIGS}/{doomed_cfg}").status_code == 204

    problem(ed.get(f"{API}/audit-events"), 403)
    egress_admin(server, "revoke-token", editor_id)
    problem(ed.get(f"{API}/audit-events"), 401)
    with api(server, "egr_nobody") as stranger:  # names no workspace: filed under none
        problem(stranger.get(f"{API}/audit-events"), 401)

    r = http.get(f"{API}/audit-events", params={"limit": 100})
    assert r.status_code == 200, r.text
    events = r.json()["data"]
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)

    def execution(eid: str, c: str = cfg, **detail: Any) -> dict[str, Any]:
        return {"type": "execution", "id": eid, "configurationId": c, **detail}

    def ok(action: str, actor: dict[str, str], obj: dict[str, Any], **detail: Any) -> tuple:
        obj_id = {"type": obj.pop("type"), "id": obj.pop("id")}
        source = None if actor == OPERATOR else LOCAL
        return (action, actor, obj_id, "success", source, {**obj, **detail})

    name = file["name"]
    expected = [
        ok("token.create", OPERATOR, {"type": "token", "id": editor_id}, name="ed", role="editor"),
        ok("connection.create", admin, {"type": "connection", "id": conn}, secrets=[]),
        ok("connection.update", admin, {"type": "connection", "id": conn}, changed=["name"]),
        ok("configuration.create", admin, {"type": "configuration", "id": cfg}),
        ok(
            "configuration.update",
            admin,
            {"type": "configuration", "id": cfg},
            changed=["file_name_pattern"],
        ),
        ok("configuration.submit", admin, {"type": "configuration", "id": cfg}),
        ok("execution.trigger", editor, execution(cancelled["id"]), trigger="api"),
        ok("execution.cancel", editor, execution(cancelled["id"]), run=1),
        ok("configuration.create", admin, {"type": "configuration", "id": split_cfg}),
        ok("configuration.submit", admin, {"type": "configuration", "id": split_cfg}),
        ok("execution.trigger", admin, execution(done["id"]), trigger="api"),
        ok("execution.trigger", admin, execution(zipped["id"], split_cfg), trigger="api"),
        ok("file.download", admin, execution(done["id"]), run=1, subExtractId="all", file=name),
        ok(
            "file.download",
            {**admin, "name": ""},
            execution(done["id"]),
            run=1,
            subExtractId="all",
            file=name,
            via="signed-link",
        ),
        ok("zip.download", admin, execution(zipped["id"], split_cfg), run=1),
        ok("execution.rerun", admin, execution(done["id"]), run=2),
        ok("connection.create", admin, {"type": "connection", "id": doomed}, secrets=[]),
        ok("connection.delete", admin, {"type": "connection", "id": doomed}),
        ok("configuration.create", admin, {"type": "configuration", "id": doomed_cfg}),
        ok("configuration.submit", admin, {"type": "configuration", "id": doomed_cfg}),
        ok("configuration.delete", admin, {"type": "configuration", "id": doomed_cfg}),
        ok("token.revoke", OPERATOR, {"type": "token", "id": editor_id}, name="ed", role="editor"),
        (
            "sign-in",
            editor,
            None,
            "failure",
            LOCAL,
            {"method": "bearer", "reason": "the bearer token has been revoked"},
        ),
    ]
    assert [_entry(e) for e in reversed(events)] == expected

    # Filters: by action, by actor, by time; and pages of the native envelope.
    r = http.get(f"{API}/audit-events", params={"action": "file.download"})
    assert [e["detail"].get("via") for e in r.json()["data"]] == ["signed-link", None]
    r = http.get(f"{API}/audit-events", params={"actor": editor_id})
    # The editor's own acts; the operator's token changes name the token as their object.
    assert [e["action"] for e in r.json()["data"]] == [
        "sign-in",
        "execution.cancel",
        "execution.trigger",
    ]
    cut = events[3]["at"]
    r = http.get(f"{API}/audit-events", params={"from": cut, "limit": 100})
    assert [e["id"] for e in r.json()["data"]] == [e["id"] for e in events[:4]]
    r = http.get(f"{API}/audit-events", params={"to": cut, "limit": 100})
    assert [e["id"] for e in r.json()["data"]] == [e["id"] for e in events[4:]]
    r = http.get(f"{API}/audit-events", params={"limit": 5, "page": 1})
    body = r.json()
    assert (body["page"], body["limit"], body["totalSize"], body["totalPages"]) == (1, 5, 23, 5)
    assert [e["id"] for e in body["data"]] == [e["id"] for e in events[5:10]]
    problem(http.get(f"{API}/audit-events", params={"action": "nap"}), 422, "query.action")
    for bad in ("yesterday", "2026-12-01T00:00:00", "0001-01-01T00:00:00+14:00"):
        problem(http.get(f"{API}/audit-events", params={"from": bad}), 422, "query.from")
    window = {"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}
    problem(http.get(f"{API}/audit-events", params=window), 422, "query.to")


def test_identity_changes_and_oauth_sign_ins_are_on_record(server: Server) -> None:
    """Users, clients, personal tokens and every kind of OAuth sign-in, in a workspace of
    their own: each change once, written with it; each sign-in with its outcome."""
    create_workspace(server, "team")
    admin_token = create_token(server, "team", "admin", "--name", "boss")
    admin_id = next(i for n, i in _token_ids(server).items() if n == "boss")
    admin = {"type": "token", "id": admin_id, "name": "boss"}
    with api(server, admin_token) as http:
        ada = http.post(
            f"{API}/users", json={"email": "Ada@team.test", "role": "editor", "password": PASSWORD}
        ).json()["id"]
        bo = http.post(f"{API}/users", json={"email": "bo@team.test", "role": "viewer"}).json()
        assert http.patch(f"{API}/users/{bo['id']}", json={"role": "editor"}).status_code == 200
        assert http.patch(f"{API}/users/{bo['id']}", json={"role": "editor"}).status_code == 200
        r = http.patch(f"{API}/users/{bo['id']}", json={"password": "y" * 16})
        assert r.status_code == 200, r.text
        machine = http.post(f"{API}/clients", json={"name": "etl", "role": "editor"}).json()
        web_body = {"name": "web", "role": "admin", "public": True, "redirectUris": [REDIRECT]}
        web = http.post(f"{API}/clients", json=web_body).json()["clientId"]
        personal = http.post(f"{API}/tokens", json={"name": "mine"}).json()
        assert http.delete(f"{API}/tokens/{personal['id']}").status_code == 204
    with api(server) as elsewhere:  # a person of another workspace only
        body = {"email": "eve@else.test", "role": "admin", "password": PASSWORD}
        assert elsewhere.post(f"{API}/users", json=body).status_code == 201
    machine_id, secret = machine["clientId"], machine["clientSecret"]
    verifier, challenge = pkce()
    params = authorize_query(web, REDIRECT, challenge)
    with anonymous(server) as browser:
        good = {"grant_type": "client_credentials"}
        assert browser.post("/oauth/token", data=good, auth=(machine_id, secret)).is_success
        wrong = browser.post("/oauth/token", data=good, auth=(machine_id, "egs_wrong"))
        assert wrong.status_code == 401, wrong.text
        assert browser.post("/api/v3/token", auth=(machine_id, secret)).is_success
        form = {"email": "ada@team.test", "password": "not it", "decision": "allow"}
        forged = browser.post("/oauth/authorize", params=params, data=form)  # no CSRF field
        assert forged.status_code == 403 and "reload the page" in forged.text
        assert post_sign_in(browser, params, form).status_code == 401
        outsider = post_sign_in(
            browser, params, {**form, "email": body["email"], "password": PASSWORD}
        )
        assert parse_qs(urlsplit(outsider.headers["location"]).query)["error"] == ["access_denied"]
        signed_in = post_sign_in(browser, params, {**form, "password": PASSWORD})
        assert signed_in.status_code == 302, signed_in.text
        code = parse_qs(urlsplit(signed_in.headers["location"]).query)["code"][0]
        exchange = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": web,
            "code_verifier": verifier,
        }
        assert browser.post("/oauth/token", data=exchange).is_success
        assert browser.post("/oauth/token", data=exchange).status_code == 400  # reused code
    with api(server, admin_token) as http:
        assert http.delete(f"{API}/clients/{machine_id}").status_code == 204
        assert http.delete(f"{API}/users/{bo['id']}").status_code == 204
        events = http.get(f"{API}/audit-events", params={"limit": 100}).json()["data"]

    ada_user = {"type": "user", "id": ada, "name": "ada@team.test"}
    etl = {"type": "client", "id": machine_id, "name": "etl"}
    web_client = {"type": "client", "id": web, "name": "web"}
    nobody = {"type": "anonymous", "id": "", "name": ""}

    def by_admin(action: str, obj: tuple[str, str], **detail: Any) -> tuple[Any, ...]:
        return (action, admin, {"type": obj[0], "id": obj[1]}, "success", LOCAL, detail)

    def sign_in(actor: dict[str, Any], method: str, reason: str | None = None) -> tuple:
        outcome = "success" if reason is None else "failure"
        detail = {"method": method, **({"reason": reason} if reason else {})}
        return ("sign-in", actor, None, outcome, LOCAL, detail)

    client_detail = {"name": "etl", "role": "editor", "public": False}
    assert [_entry(e) for e in reversed(events)] == [
        (
            "token.create",
            OPERATOR,
            {"type": "token", "id": admin_id},
            "success",
            None,
            {"name": "boss", "role": "admin"},
        ),
        by_admin(
            "user.invite", ("user", ada), email="ada@team.test", role="editor", passwordSet=True
        ),
        by_admin(
            "user.invite",
            ("user", bo["id"]),
            email="bo@team.test",
            role="viewer",
            passwordSet=False,
        ),
        # The second PATCH changed nothing: no entry.
        by_admin("role.change", ("user", bo["id"]), **{"from": "viewer", "to": "editor"}),
        by_admin("user.password", ("user", bo["id"])),
        by_admin("client.create", ("client", machine_id), **client_detail),
        by_admin("client.create", ("client", web), name="web", role="admin", public=True),
        by_admin("token.create", ("token", personal["id"]), name="mine", role="admin"),
        by_admin("token.revoke", ("token", personal["id"]), name="mine", role="admin"),
        sign_in(etl, "client_credentials"),
        sign_in(etl, "client_credentials", "invalid_client"),
        sign_in(etl, "client_credentials"),  # /api/v3/token
        sign_in(nobody, "password", "wrong email or password"),
        sign_in(nobody, "password", "not a member of the workspace"),  # not named here
        sign_in(ada_user, "password"),
        sign_in(ada_user, "authorization_code"),
        sign_in(web_client, "authorization_code", "invalid_grant"),
        by_admin("client.revoke", ("client", machine_id), name="etl", role="editor"),
        by_admin("user.remove", ("user", bo["id"]), email="bo@team.test", role="editor"),
    ]
