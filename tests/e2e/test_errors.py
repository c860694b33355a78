"""Every bad request gets a clear 4xx problem+json naming the field; auth and tenancy;
connections and configurations managed through their endpoints; secrets never shown."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from egress.demo import create_orders_db
from tests.conftest import Server, free_port, wait_for_status
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
from tests.support.identity import create_token, create_workspace

SECRET = "s3cr3t-pa55word-never-shown"
SECRET_2 = "an0ther-s3cret-rotated-in"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("errors"), secrets=(SECRET, SECRET_2)) as s:
        yield s


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_orders_db(tmp_path_factory.mktemp("shop") / "shop.db", rows=50)


@pytest.fixture(scope="module")
def world(http: httpx.Client, shop: Path) -> dict[str, Any]:
    """A connection, its orders template, a submitted configuration and a completed run."""
    conn = sqlite_connection(http, shop, "shop")
    tpl = template(http, conn, "main.orders")
    cfg = configuration(http, tpl["id"], "errs")
    eid = trigger(http, cfg)["id"]
    details = wait_for_status(http, cfg, eid, DONE)
    assert details["latestStatus"] == "COMPLETED"
    return {
        "conn": conn,
        "tpl": tpl,
        "cfg": cfg,
        "base": f"{CONFIGS}/{cfg}",
        "eid": eid,
        "details": details,
    }


def _config(world: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "c",
        "templateId": world["tpl"]["id"],
        "format": "csv",
        "destination": {"type": "storage", "path": "x"},
    }
    body.update(overrides)
    return body


# ------------------------------------------------------------------------- auth


def test_every_api_route_needs_a_token(server: Server) -> None:
    spec = httpx.get(f"{server.base_url}/openapi.json").json()
    checked = 0
    with anonymous(server) as client:
        for path, methods in spec["paths"].items():
            if not path.startswith("/api/"):
                continue
            concrete = re.sub(r"\{[^}]+\}", "x", path)
            if path.startswith("/api/v1/links/"):
                # A signed link is its own credential (no bearer token): not one it issued is 403.
                for method in methods:
                    r = client.request(method.upper(), concrete)
                    assert r.status_code == 403, (method, path)
                continue
            # Public routes (POST /api/v3/token: how a client gets a token) declare no role;
            # tests/security/test_route_matrix.py keeps that list short.
            for method in [m for m, op in methods.items() if "x-egress-role" in op]:
                for headers in (
                    {},
                    {"Authorization": "Bearer wrong"},
                    {"Authorization": f"Basic {server.token}"},
                ):
                    r = client.request(method.upper(), concrete, headers=headers)
                    assert r.headers["www-authenticate"].startswith("Bearer"), (method, path)
                    if method == "head":  # same status and headers, never a body
                        assert r.status_code == 401 and r.content == b"", path
                    else:
                        assert "token" in problem(r, 401)["detail"]
                    checked += 1
        assert checked >= 60
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json() == {"status": "ok"}


def test_another_workspace_sees_nothing(server: Server, world: dict[str, Any]) -> None:
    create_workspace(server, "other")
    token = create_token(server, "other", "admin")
    conn, tpl, base, eid = world["conn"], world["tpl"]["id"], world["base"], world["eid"]
    execution = f"{base}/executions/{eid}"
    with api(server, token) as other:
        for listing in (
            f"{API}/connections",
            f"{API}/templates",
            CONFIGS,
        ):
            body = other.get(listing).json()
            assert (body["data"], body["totalSize"]) == ([], 0), listing
        # Not 403: another workspace's objects do not exist for this token.
        for r in (
            other.get(f"{API}/connections/{conn}"),
            other.patch(f"{API}/connections/{conn}", json={"name": "mine"}),
            other.delete(f"{API}/connections/{conn}"),
            other.post(f"{API}/connections/{conn}/test"),
            other.get(f"{API}/connections/{conn}/elements"),
            other.get(f"{API}/templates", params={"connectionId": conn}),
            other.get(f"{API}/templates/{tpl}"),
            other.get(base),
            other.put(base, json=_config(world)),
            other.patch(base, json={"name": "mine"}),
            other.delete(base),
            other.post(f"{base}/submit"),
            other.get(f"{base}/executions"),
            other.post(f"{base}/executions"),
            other.get(execution),
            other.post(f"{execution}/rerun"),
            other.post(f"{execution}/cancel"),
            other.get(f"{execution}/download"),
            other.get(f"{execution}/download?run=1"),
        ):
            problem(r, 404)
        # Using another workspace's template in a configuration: as if it did not exist.
        problem(other.post(CONFIGS, json=_config(world)), 422, "templateId")
    # The owner still sees everything unchanged.
    with api(server) as owner:
        assert owner.get(f"{API}/connections/{conn}").json()["name"] == "shop"
        assert owner.get(base).json()["name"] == "errs"
        assert owner.get(f"{execution}/download").status_code == 200


# ------------------------------------------------------------------ connections


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
    created = r.json()
    assert {"id", "name", "type", "settings", "createdAt"} <= set(created)
    assert created["secretNames"] == ["password"]
    assert "password" not in created["settings"]
    cid = created["id"]
    rotated = http.patch(f"{API}/connections/{cid}", json={"secrets": {"password": SECRET_2}})
    assert rotated.status_code == 200 and rotated.json()["secretNames"] == ["password"]
    for response in (
        rotated,
        http.get(f"{API}/connections/{cid}"),
        http.get(f"{API}/connections"),
        http.patch(f"{API}/connections/{cid}", json={"name": "pg_secret2"}),
        http.post(f"{API}/connections/{cid}/test"),
        http.get(f"{API}/connections/{cid}/elements"),
    ):
        assert response.status_code < 500
        assert SECRET not in response.text and SECRET_2 not in response.text
    # The module's server fixture also checks that neither secret reached the server log.


def test_unreachable_postgresql_is_reported_not_raised(http: httpx.Client) -> None:
    r = http.post(
        f"{API}/connections",
        json={
            "name": "pg_wrong_port",
            "type": "postgresql",
            "settings": {
                "host": "127.0.0.1",
                "port": free_port(),
                "database": "postgres",
                "user": "postgres",
            },
        },
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    test = http.post(f"{API}/connections/{cid}/test")
    assert test.status_code == 200
    body = test.json()
    assert body["ok"] is False and isinstance(body["error"], str) and body["error"]
    problem(http.get(f"{API}/connections/{cid}/elements"), 422, "connection")
    problem(http.get(f"{API}/templates", params={"connectionId": cid}), 422, "connection")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "a", "type": "postgresql", "settings": {"port": 5432}}, "settings.host"),
        (
            {"name": "a", "type": "postgresql", "settings": {"database": "d", "user": "u"}},
            "settings.host",
        ),
        (
            {
                "name": "a",
                "type": "postgresql",
                "settings": {"host": "h", "database": "d", "user": "u", "nope": 1},
            },
            "settings.nope",
        ),
        (
            {
                "name": "a",
                "type": "postgresql",
                "settings": {"host": "h", "database": "d", "user": "u", "port": "x"},
            },
            "settings.port",
        ),
        ({"name": "a", "type": "sqlite", "settings": {"path": "relative.db"}}, "settings.path"),
        ({"name": "a", "type": "oracle", "settings": {}}, "type"),
        (
            {"name": "a", "type": "sqlite", "settings": {"path": "/x.db"}, "secrets": {"k": "v"}},
            "secrets.k",
        ),
        ({"type": "sqlite", "settings": {"path": "/x.db"}}, "name"),
        ({"name": "", "type": "sqlite", "settings": {"path": "/x.db"}}, "name"),
        ({"name": "a", "type": "sqlite", "settings": "/x.db"}, "settings"),
        ({"name": "a", "type": "sqlite", "settings": {"path": "/x.db"}, "extra": 1}, "extra"),
    ],
)
def test_connection_validation(http: httpx.Client, body: dict[str, Any], field: str) -> None:
    problem(http.post(f"{API}/connections", json=body), 422, field)


def test_connection_patch(http: httpx.Client, tmp_path: Path) -> None:
    first = create_orders_db(tmp_path / "first.db", rows=3)
    second = tmp_path / "second.db"
    with sqlite3.connect(second) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    cid = sqlite_connection(http, first, "patch_me")
    before = http.get(f"{API}/connections/{cid}").json()

    renamed = http.patch(f"{API}/connections/{cid}", json={"name": "patched"})
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["settings"]) == ("patched", before["settings"])
    assert renamed.json()["createdAt"] == before["createdAt"]
    assert renamed.json()["updatedAt"] >= before["updatedAt"]

    moved = http.patch(f"{API}/connections/{cid}", json={"settings": {"path": str(second)}})
    assert moved.status_code == 200 and moved.json()["settings"] == {"path": str(second)}
    assert moved.json()["name"] == "patched"
    tree = http.get(f"{API}/connections/{cid}/elements").json()["data"]
    assert [t["name"] for t in tree[0]["children"]] == ["customers"]

    problem(
        http.patch(f"{API}/connections/{cid}", json={"settings": {"path": "rel.db"}}),
        422,
        "settings.path",
    )
    problem(http.patch(f"{API}/connections/{cid}", json={"name": None}), 422, "name")
    problem(http.patch(f"{API}/connections/{cid}", json={"settings": None}), 422, "settings")
    problem(http.patch(f"{API}/connections/{cid}", json={"type": "postgresql"}), 422, "type")
    problem(
        http.patch(f"{API}/connections/{cid}", json={"secrets": {"password": "x"}}),
        422,
        "secrets.password",
    )
    assert http.get(f"{API}/connections/{cid}").json()["name"] == "patched"


def test_connection_delete(http: httpx.Client, world: dict[str, Any], tmp_path: Path) -> None:
    body = problem(http.delete(f"{API}/connections/{world['conn']}"), 409)
    assert "errs" in body["detail"]
    assert http.get(f"{API}/connections/{world['conn']}").status_code == 200

    unused = sqlite_connection(http, create_orders_db(tmp_path / "u.db", rows=1), "unused")
    tpl = template(http, unused, "main.orders")
    deleted = http.delete(f"{API}/connections/{unused}")
    assert deleted.status_code == 204 and deleted.content == b""
    problem(http.get(f"{API}/connections/{unused}"), 404)
    problem(http.delete(f"{API}/connections/{unused}"), 404)
    problem(http.get(f"{API}/templates/{tpl['id']}"), 404)
    assert unused not in [c["id"] for c in http.get(f"{API}/connections").json()["data"]]


def test_missing_sqlite_file_is_a_clear_4xx(http: httpx.Client, tmp_path: Path) -> None:
    cid = sqlite_connection(http, tmp_path / "no.db", "ghost")
    body = problem(http.get(f"{API}/connections/{cid}/elements"), 422, "connection")
    assert "cannot open" in body["detail"] and "as a SQLite database" in body["detail"]
    problem(http.get(f"{API}/templates", params={"connectionId": cid}), 422, "connection")
    test = http.post(f"{API}/connections/{cid}/test").json()
    assert test["ok"] is False and test["error"]
    assert not (tmp_path / "no.db").exists()  # browsing did not create it


# --------------------------------------------------------------- configurations


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"fields": ["id", "nope"]}, "fields", "'nope'"),
        ({"fields": []}, "fields", "at least 1"),
        ({"templateId": "missing"}, "templateId", "unknown template"),
        ({"format": "xml"}, "format", "csv"),
        ({"fields": 5}, "fields", "list"),
        ({"name": 7}, "name", "string"),
        ({"compression": "brotli"}, "compression", "gzip"),
        ({"format": "parquet", "compression": "gzip"}, "compression", "zstd"),
        ({"fileNamePattern": "{nope}.{ext}"}, "fileNamePattern", "unknown placeholder"),
        ({"fileNamePattern": "{configurationName}"}, "fileNamePattern", "{ext}"),
        ({"destination": {"type": "storage", "path": "a/../../etc"}}, "destination.path", ".."),
        ({"destination": {"type": "storage", "path": "../x"}}, "destination.path", ".."),
        ({"destination": {"type": "ftp"}}, "destination", "storage"),
        ({"startDate": "2026-05-01", "endDate": "2026-04-01"}, "endDate", "after startDate"),
        ({"startDate": "2026-05-01T10:00:00"}, "startDate", "timezone"),
        ({"splitBy": "nope"}, "splitBy", "unknown field"),
        ({"filter": "x = 1"}, "whereClause", "unknown column"),
        (
            {"filter": "is_gift = 'yes'"},
            "whereClause",
            "'yes' cannot be compared with boolean column 'is_gift': write 'true' or 'false'",
        ),
        (
            {"filter": "length(region, 2) = 3"},
            "whereClause",
            "function length() takes 1 argument, not 2 (in 'length(region, 2)')",
        ),
        ({"extra": 1}, "extra", "not permitted"),
    ],
)
def test_configuration_validation(
    http: httpx.Client, world: dict[str, Any], overrides: dict[str, Any], field: str, text: str
) -> None:
    body = problem(http.post(CONFIGS, json=_config(world, **overrides)), 422, field)
    assert text in body["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/connections"),
        ("POST", CONFIGS),
        ("PUT", "{base}"),
        ("PATCH", "{base}"),
        ("POST", "{base}/executions"),
    ],
)
def test_malformed_json_is_400(
    http: httpx.Client, world: dict[str, Any], method: str, path: str
) -> None:
    r = http.request(
        method,
        path.format(base=world["base"]),
        content=b'{"name": "x",',
        headers={"Content-Type": "application/json"},
    )
    assert "not valid JSON" in problem(r, 400)["detail"]


def test_configuration_put_patch_delete(http: httpx.Client, world: dict[str, Any]) -> None:
    r = http.post(CONFIGS, json=_config(world, name="life", fields=["id", "region"]))
    assert r.status_code == 201
    created = r.json()
    cid, url = created["id"], f"{CONFIGS}/{created['id']}"
    assert (created["version"], created["status"], created["active"]) == (1, "DRAFT", False)
    assert http.get(url).json() == created

    # PUT replaces the whole: what is left out goes back to its default.
    put = http.put(url, json=_config(world, name="life", format="jsonl"))
    assert put.status_code == 200
    assert (put.json()["format"], put.json()["fields"], put.json()["version"]) == (
        "jsonl",
        None,
        2,
    )
    problem(http.put(url, json={"name": "only a name"}), 422, "templateId")

    # PATCH changes only what it names.
    patched = http.patch(url, json={"compression": "gzip", "fields": ["id"]})
    assert patched.status_code == 200
    after = patched.json()
    assert (after["compression"], after["fields"], after["format"], after["version"]) == (
        "gzip",
        ["id"],
        "jsonl",
        3,
    )
    assert after["createdAt"] == created["createdAt"] and after["id"] == cid
    problem(http.patch(url, json={"name": None}), 422, "name")
    problem(http.patch(url, json={"format": "parquet"}), 422, "compression")
    problem(http.patch(url, json={"fields": ["nope"]}), 422, "fields")
    assert http.get(url).json()["version"] == 3  # refused changes change nothing

    deleted = http.delete(url)
    assert deleted.status_code == 204 and deleted.content == b""
    problem(http.get(url), 404)
    problem(http.delete(url), 404)
    problem(http.patch(url, json={"name": "x"}), 404)
    problem(http.put(url, json=_config(world)), 404)


def test_configuration_list_filters_and_pages(http: httpx.Client, world: dict[str, Any]) -> None:
    drafts = {http.post(CONFIGS, json=_config(world, name=f"d{i}")).json()["id"] for i in range(3)}
    submitted = {configuration(http, world["tpl"]["id"], f"s{i}") for i in range(2)}

    def every(status: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 0
        while True:
            body = http.get(CONFIGS, params={"status": status, "limit": 2, "page": page}).json()
            assert set(body) == {"data", "page", "limit", "totalSize", "totalPages"}
            assert (body["page"], body["limit"]) == (page, 2)
            assert body["totalPages"] == -(-body["totalSize"] // 2)
            assert len(body["data"]) <= 2
            out += body["data"]
            page += 1
            if page >= body["totalPages"]:
                return out

    listed_drafts = every("DRAFT")
    assert drafts <= {c["id"] for c in listed_drafts}
    assert {c["status"] for c in listed_drafts} == {"DRAFT"}
    assert all(c["active"] is False for c in listed_drafts)
    listed_submitted = every("SUBMITTED")
    assert (submitted | {world["cfg"]}) <= {c["id"] for c in listed_submitted}
    assert {c["status"] for c in listed_submitted} == {"SUBMITTED"}
    ids = [c["id"] for c in listed_drafts + listed_submitted]
    assert len(ids) == len(set(ids))  # pages do not overlap
    assert http.get(CONFIGS).json()["totalSize"] == len(ids)

    problem(http.get(CONFIGS, params={"limit": 5000}), 422, "query.limit")
    problem(http.get(CONFIGS, params={"limit": 0}), 422, "query.limit")
    problem(http.get(CONFIGS, params={"page": -1}), 422, "query.page")
    # A page whose offset would overflow the database's integers (found by schemathesis).
    for route in (CONFIGS, f"{API}/connections", f"{API}/templates"):
        problem(http.get(route, params={"page": 10**19, "limit": 235}), 422, "query.page")
    problem(http.get(CONFIGS, params={"status": "X"}), 422, "query.status")


def test_trigger_rules(http: httpx.Client, world: dict[str, Any]) -> None:
    draft = http.post(CONFIGS, json=_config(world, name="draft")).json()
    assert "DRAFT" in problem(http.post(f"{CONFIGS}/{draft['id']}/executions"), 409)["detail"]

    ended = http.post(
        CONFIGS, json=_config(world, name="ended", startDate="2020-01-01", endDate="2020-02-01")
    ).json()
    submitted = http.post(f"{CONFIGS}/{ended['id']}/submit").json()
    assert (submitted["status"], submitted["active"]) == ("SUBMITTED", False)
    body = problem(http.post(f"{CONFIGS}/{ended['id']}/executions"), 409)
    assert "endDate" in body["detail"]
    assert http.get(f"{CONFIGS}/{ended['id']}/executions").json()["totalSize"] == 0

    # Not started yet: inactive, and a trigger is refused naming the start date.
    future = configuration(http, world["tpl"]["id"], "future", startDate="2999-01-01")
    assert http.get(f"{CONFIGS}/{future}").json()["active"] is False
    body = problem(http.post(f"{CONFIGS}/{future}/executions"), 409)
    assert "startDate (2999-01-01T00:00:00+00:00)" in body["detail"]
    assert http.get(f"{CONFIGS}/{future}/executions").json()["totalSize"] == 0

    problem(http.post(f"{world['base']}/executions/nope/rerun"), 404)
    completed = f"{world['base']}/executions/{world['eid']}/cancel"
    assert "COMPLETED" in problem(http.post(completed), 409)["detail"]


def test_unknown_ids_are_404(http: httpx.Client, world: dict[str, Any]) -> None:
    base, execution = world["base"], f"{world['base']}/executions/{world['eid']}"
    requests = [
        ("GET", f"{API}/connections/nope"),
        ("PATCH", f"{API}/connections/nope"),
        ("DELETE", f"{API}/connections/nope"),
        ("POST", f"{API}/connections/nope/test"),
        ("GET", f"{API}/connections/nope/elements"),
        ("GET", f"{API}/templates?connectionId=nope"),
        ("GET", f"{API}/templates/nope"),
        ("GET", f"{CONFIGS}/nope"),
        ("PUT", f"{CONFIGS}/nope"),
        ("PATCH", f"{CONFIGS}/nope"),
        ("DELETE", f"{CONFIGS}/nope"),
        ("POST", f"{CONFIGS}/nope/submit"),
        ("GET", f"{CONFIGS}/nope/executions"),
        ("POST", f"{CONFIGS}/nope/executions"),
        ("GET", f"{base}/executions/nope"),
        ("POST", f"{base}/executions/nope/rerun"),
        ("POST", f"{base}/executions/nope/cancel"),
        ("GET", f"{base}/executions/nope/download"),
        ("GET", f"{execution}/sub-extracts/nope"),
        ("GET", f"{execution}/sub-extracts/nope/download"),
        ("GET", f"{API}/no-such-route"),
    ]
    bodies = {
        "PATCH": {"name": "x"},
        "PUT": _config(world),
    }
    for method, path in requests:
        r = http.request(method, path, json=bodies.get(method))
        body = problem(r, 404)
        assert body["type"].endswith("/404") and body["title"] == "Not Found", (method, path)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (
            "is_gift = 't'",
            "'t' cannot be compared with boolean column 'is_gift': write 'true' or 'false'"
            " (in any letter case), or TRUE or FALSE (in \"is_gift = 't'\")",
        ),
        (
            "is_gift IN ('true', '1')",
            "'1' cannot be compared with boolean column 'is_gift': write 'true' or 'false'"
            " (in any letter case), or TRUE or FALSE (in \"is_gift IN ('true', '1')\")",
        ),
        (
            "date(ordered_at, 'start of month') = '2026-01-01'",
            "function date() takes 1 argument, not 2 (in \"date(ordered_at, 'start of month')\")",
        ),
        ("abs(amount, 1) > 0", "function abs() takes 1 argument, not 2 (in 'abs(amount, 1)')"),
    ],
)
def test_a_where_clause_is_checked_against_its_columns_types_and_functions_arguments(
    http: httpx.Client, world: dict[str, Any], where: str, message: str
) -> None:
    """Refused before any run: MariaDB read `b = 'true'` as `b = 0`, and `length(s, 2)` or
    `date(dt, 'x')` completed on some sources and failed on others."""
    r = http.post(f"{world['base']}/executions", json={"whereClause": where})
    body = problem(r, 422, "whereClause")
    assert body["detail"] == f"body.whereClause: {message}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dateFrom": "yesterday"}, "dateFrom"),
        ({"incrementalLag": "soon"}, "incrementalLag"),
        ({"whereClause": "nope = 1"}, "whereClause"),
    ],
)
def test_a_422_names_the_field_as_the_native_client_sent_it(
    http: httpx.Client, world: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    """The services name fields logically (``date_from``); the native face answers with its
    camelCase name, in ``errors`` and in ``detail``."""
    r = http.post(f"{world['base']}/executions", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field
    assert r.json()["detail"].startswith(f"body.{field}: ")
