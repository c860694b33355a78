"""The audit trail over HTTP: every audited action of a real session — CLI token changes,
connections, configurations, triggers, a cancel, a re-run, file, zip and signed-link downloads,
a failed sign-in — appears once, with actor, object, outcome and source address; admins read it
with filters and pages, editors are refused. ``triggeredBy`` names the caller."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
from tests.support.identity import create_token, egress_admin

OPERATOR = {"type": "operator", "id": "cli", "name": "egress admin"}
LOCAL = "127.0.0.1"


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
