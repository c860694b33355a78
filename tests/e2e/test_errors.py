"""Every bad request gets a clear 4xx problem+json naming the field; auth and tenancy."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from egress.db.engine import make_engine
from egress.db.workspaces import WorkspaceRepo
from egress.demo import create_orders_db
from tests.conftest import Server, start_server, stop_server, wait_for_status
from tests.support.http import sqlite_template, submitted_configuration

API = "/api/v1"
SECRET = "s3cr3t-pa55word-never-shown"
DONE = {"COMPLETED", "COMPLETED_NO_DATA", "FAILED", "CANCELLED"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("errors"))
    yield s
    stop_server(s)
    log = s.log()
    assert "Traceback" not in log and '" 500' not in log, log[-3000:]
    assert SECRET not in log


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_orders_db(tmp_path_factory.mktemp("shop") / "shop.db", rows=50)


@pytest.fixture(scope="module")
def world(http: httpx.Client, shop: Path) -> dict[str, Any]:
    tpl_id = sqlite_template(http, shop, "shop", "orders")
    cfg = {
        "id": submitted_configuration(
            http, tpl_id, "errs", destination={"type": "storage", "path": "e"}
        )
    }
    conn = http.get(f"{API}/connections").json()["data"][0]
    tpl = http.get(f"{API}/templates/{tpl_id}").json()
    base = f"{API}/extraction-configurations/{cfg['id']}"
    eid = http.post(f"{base}/executions").json()["id"]
    details = wait_for_status(http, cfg["id"], eid, DONE)
    return {"conn": conn, "tpl": tpl, "cfg": cfg, "base": base, "eid": eid, "details": details}


def problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status and body["detail"]
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return body


def test_every_api_route_needs_a_token(server: Server) -> None:
    spec = httpx.get(f"{server.base_url}/openapi.json").json()
    checked = 0
    for path, methods in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method in methods:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                r = httpx.request(method.upper(), f"{server.base_url}{concrete}", headers=headers)
                body = problem(r, 401)
                assert r.headers["www-authenticate"].startswith("Bearer")
                assert "token" in body["detail"]
                checked += 1
    assert checked >= 30
    assert httpx.get(f"{server.base_url}/healthz").json() == {"status": "ok"}


def test_another_workspace_sees_nothing(server: Server, world: dict[str, Any]) -> None:
    repo = WorkspaceRepo(make_engine(f"sqlite:///{server.data_dir}/egress.db"))
    ws = repo.ensure_workspace("other")
    repo.ensure_token(ws, "other-token", role="admin", name="t")
    with server.client("other-token") as other:
        assert other.get(f"{API}/connections").json()["totalSize"] == 0
        problem(other.get(f"{API}/connections/{world['conn']['id']}"), 404)
        problem(other.get(f"{API}/templates/{world['tpl']['id']}"), 404)
        problem(other.get(world["base"]), 404)
        problem(other.get(f"{world['base']}/executions/{world['eid']}"), 404)
        problem(other.get(f"{world['base']}/executions/{world['eid']}/download"), 404)
        problem(other.post(f"{world['base']}/executions"), 404)
        problem(other.delete(f"{API}/connections/{world['conn']['id']}"), 404)


def test_connection_secrets_are_never_returned(http: httpx.Client) -> None:
    r = http.post(
        f"{API}/connections",
        json={
            "name": "pg_secret",
            "type": "postgresql",
            "settings": {"host": "127.0.0.1", "port": 1, "database": "x", "user": "postgres"},
            "secrets": {"password": SECRET},
        },
    )
    assert r.status_code == 201 and SECRET not in r.text
    assert r.json()["secretNames"] == ["password"]
    cid = r.json()["id"]
    for response in (
        http.get(f"{API}/connections/{cid}"),
        http.get(f"{API}/connections"),
        http.patch(f"{API}/connections/{cid}", json={"name": "pg_secret2"}),
    ):
        assert response.status_code == 200 and SECRET not in response.text
    test = http.post(f"{API}/connections/{cid}/test").json()
    assert test["ok"] is False and test["error"] and SECRET not in test["error"]
    problem(http.get(f"{API}/connections/{cid}/elements"), 422, "connection")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "a", "type": "postgresql", "settings": {"port": 5432}}, 422, "settings.host"),
        (
            {
                "name": "a",
                "type": "postgresql",
                "settings": {"host": "h", "database": "d", "user": "u", "nope": 1},
            },
            422,
            "settings.nope",
        ),
        (
            {"name": "a", "type": "sqlite", "settings": {"path": "relative.db"}},
            422,
            "settings.path",
        ),
        ({"name": "a", "type": "oracle", "settings": {}}, 422, "type"),
        (
            {"name": "a", "type": "sqlite", "settings": {"path": "/x.db"}, "secrets": {"k": "v"}},
            422,
            "secrets.k",
        ),
        ({"type": "sqlite", "settings": {"path": "/x.db"}}, 422, "name"),
    ],
)
def test_connection_validation(
    http: httpx.Client, body: dict[str, Any], status: int, field: str
) -> None:
    problem(http.post(f"{API}/connections", json=body), status, field)


def test_connection_in_use_cannot_be_deleted(http: httpx.Client, world: dict[str, Any]) -> None:
    body = problem(http.delete(f"{API}/connections/{world['conn']['id']}"), 409)
    assert "errs" in body["detail"]


def test_missing_sqlite_file_is_a_clear_4xx(http: httpx.Client, tmp_path: Path) -> None:
    cid = http.post(
        f"{API}/connections",
        json={"name": "ghost", "type": "sqlite", "settings": {"path": str(tmp_path / "no.db")}},
    ).json()["id"]
    body = problem(http.get(f"{API}/connections/{cid}/elements"), 422, "connection")
    assert "no SQLite database file" in body["detail"]
    assert http.post(f"{API}/connections/{cid}/test").json()["ok"] is False


def _config(world: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "c",
        "templateId": world["tpl"]["id"],
        "format": "csv",
        "destination": {"type": "storage", "path": "x"},
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"fields": ["id", "nope"]}, "fields", "'nope'"),
        ({"templateId": "missing"}, "templateId", "unknown template"),
        ({"format": "xml"}, "format", "csv"),
        ({"fields": 5}, "fields", "list"),
        ({"format": "parquet", "compression": "gzip"}, "compression", "zstd"),
        ({"fileNamePattern": "{nope}.{ext}"}, "fileNamePattern", "unknown placeholder"),
        ({"destination": {"type": "storage", "path": "a/../../etc"}}, "destination.path", ".."),
        ({"destination": {"type": "ftp"}}, "destination", "storage"),
        ({"startDate": "2026-05-01", "endDate": "2026-04-01"}, "endDate", "after startDate"),
        ({"startDate": "2026-05-01T10:00:00"}, "startDate", "timezone"),
        ({"splitBy": "nope"}, "splitBy", "unknown field"),
        ({"filter": "x = 1"}, "whereClause", "unknown column"),
        ({"extra": 1}, "extra", "not permitted"),
    ],
)
def test_configuration_validation(
    http: httpx.Client, world: dict[str, Any], overrides: dict[str, Any], field: str, text: str
) -> None:
    body = problem(
        http.post(f"{API}/extraction-configurations", json=_config(world, **overrides)), 422, field
    )
    assert text in body["detail"]


def test_malformed_json_is_400(http: httpx.Client) -> None:
    r = http.post(
        f"{API}/extraction-configurations",
        content=b'{"name": "x",',
        headers={"Content-Type": "application/json"},
    )
    assert "not valid JSON" in problem(r, 400)["detail"]


def test_configuration_lifecycle(http: httpx.Client, world: dict[str, Any]) -> None:
    created = http.post(f"{API}/extraction-configurations", json=_config(world, name="life")).json()
    cid = created["id"]
    assert created["version"] == 1
    put = http.put(
        f"{API}/extraction-configurations/{cid}", json=_config(world, name="life", format="jsonl")
    ).json()
    assert (put["format"], put["version"]) == ("jsonl", 2)
    patched = http.patch(f"{API}/extraction-configurations/{cid}", json={"compression": "gzip"})
    assert (patched.json()["compression"], patched.json()["version"]) == ("gzip", 3)
    problem(http.patch(f"{API}/extraction-configurations/{cid}", json={"name": None}), 422, "name")
    drafts = http.get(f"{API}/extraction-configurations", params={"status": "DRAFT"}).json()
    assert cid in [c["id"] for c in drafts["data"]]
    submitted = http.get(f"{API}/extraction-configurations", params={"status": "SUBMITTED"}).json()
    assert cid not in [c["id"] for c in submitted["data"]]
    paged = http.get(f"{API}/extraction-configurations", params={"limit": 1}).json()
    assert paged["limit"] == 1 and len(paged["data"]) == 1 and paged["totalPages"] >= 2
    problem(
        http.get(f"{API}/extraction-configurations", params={"limit": 5000}), 422, "query.limit"
    )
    problem(
        http.get(f"{API}/extraction-configurations", params={"status": "X"}), 422, "query.status"
    )
    assert http.delete(f"{API}/extraction-configurations/{cid}").status_code == 204
    problem(http.get(f"{API}/extraction-configurations/{cid}"), 404)


def test_past_end_date_blocks_trigger(http: httpx.Client, world: dict[str, Any]) -> None:
    cfg = http.post(
        f"{API}/extraction-configurations",
        json=_config(world, name="ended", startDate="2020-01-01", endDate="2020-02-01"),
    ).json()
    http.post(f"{API}/extraction-configurations/{cfg['id']}/submit")
    assert http.get(f"{API}/extraction-configurations/{cfg['id']}").json()["active"] is False
    body = problem(http.post(f"{API}/extraction-configurations/{cfg['id']}/executions"), 409)
    assert "endDate" in body["detail"]


def test_rerun_rules(http: httpx.Client, world: dict[str, Any]) -> None:
    problem(http.post(f"{world['base']}/executions/nope/rerun"), 404)
    problem(http.post(f"{world['base']}/executions/{world['eid']}/cancel"), 409)


def test_download_headers_and_ranges(http: httpx.Client, world: dict[str, Any]) -> None:
    url = f"{world['base']}/executions/{world['eid']}/download"
    full = http.get(url)
    assert full.status_code == 200
    data = full.content
    sha = hashlib.sha256(data).hexdigest()
    assert full.headers["content-type"].startswith("text/csv")
    assert full.headers["content-length"] == str(len(data))
    assert full.headers["etag"] == f'"{sha}"'
    assert full.headers["digest"].startswith("sha-256=")
    name = world["details"]["runs"][0]["file"]["fileName"]
    assert f'filename="{name}"' in full.headers["content-disposition"]
    assert full.headers["content-disposition"].startswith("attachment")

    part = http.get(url, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == data[:10]
    assert part.headers["content-range"] == f"bytes 0-9/{len(data)}"
    assert http.get(url, headers={"Range": "bytes=-5"}).content == data[-5:]
    assert http.get(url, headers={"Range": "bytes=10-"}).content == data[10:]
    problem(http.get(url, headers={"Range": f"bytes={len(data)}-"}), 416)
    assert http.get(url, headers={"If-None-Match": f'"{sha}"'}).status_code == 304
    problem(http.get(url, params={"run": 99}), 404)
    problem(http.get(url, params={"run": 0}), 422, "query.run")
    problem(http.get(f"{world['base']}/executions/nope/download"), 404)


def test_unknown_ids_are_404(http: httpx.Client, world: dict[str, Any]) -> None:
    for path in [
        f"{API}/connections/nope",
        f"{API}/templates/nope",
        f"{API}/extraction-configurations/nope",
        f"{API}/extraction-configurations/nope/executions",
        f"{world['base']}/executions/nope",
        f"{world['base']}/executions/{world['eid']}/sub-extracts/nope",
    ]:
        problem(http.get(path), 404)
    problem(http.post(f"{API}/extraction-configurations/nope/executions"), 404)
    problem(http.post(f"{API}/extraction-configurations/nope/submit"), 404)
