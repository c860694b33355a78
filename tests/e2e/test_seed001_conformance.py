"""Seed 001 (the extracts API), walked line by line against a real server.

Each test names the seed lines it checks. The seed's shapes: create (``data_table_title``,
``template_id``, template settings, ``accounts``) → 201 with the extract; get / PUT / PATCH
answering ``id, title, connection_id, account_id, account_name, created_at, last_sync, status,
error_text, schedules_limit, sync_historical_data``; run with ``date_from``/``date_to``."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from egress.domain.schedules import DEFAULT_SCHEDULES_LIMIT
from tests.conftest import Server
from tests.e2e.helpers import PROBLEM, anonymous, api, sqlite_connection, template
from tests.support.identity import create_token, create_workspace

V3 = "/api/v3"
SEED_FIELDS = {
    "id": str,
    "title": str,
    "connection_id": str,
    "account_id": str,
    "account_name": str,
    "created_at": str,
    "status": str,
    "schedules_limit": int,
}
NULLABLE = ("last_sync", "error_text", "sync_historical_data")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("seed001") / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT, amount INTEGER, day DATE)"
        )
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?)",
            [
                (1, "EU", 10, "2025-02-01"),
                (2, "US", 20, "2025-02-02"),
                (3, "EU", 30, "2025-02-03"),
                (4, "O'Brien", 40, "2025-02-04"),
            ],
        )
        conn.execute("CREATE TABLE events (kind TEXT, n INTEGER)")
        conn.execute("INSERT INTO events VALUES ('a', 1), ('b', 2)")
        conn.execute("CREATE TABLE clash (account_id TEXT)")
    return db


@pytest.fixture(scope="module")
def setup(http: httpx.Client, source: Path) -> Iterator[dict[str, str]]:
    conn = sqlite_connection(http, source, "shop")
    other = sqlite_connection(http, source, "shop-again")
    dated = http.post(
        "/api/v1/templates",
        json={
            "connectionId": conn,
            "name": "orders by day",
            "table": "main.orders",
            "dateField": "day",
        },
    )
    assert dated.status_code == 201, dated.text
    yield {
        "connection": conn,
        "other_connection": other,
        "orders": template(http, conn, "main.orders")["id"],
        "events": template(http, conn, "main.events")["id"],
        "dated": dated.json()["id"],
    }


def bad_request(r: httpx.Response, field: str | None = None) -> dict[str, Any]:
    """The face's errors: RFC 9457 members plus the vendor's ``details``; 400 for bad input."""
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert {"type", "title", "status", "detail", "details"} <= set(body), body
    assert body["status"] == 400 and body["details"] == body["detail"]
    if field is not None:
        assert field in [e["field"] for e in body.get("errors", [])], body
    return body


def create(http: httpx.Client, path: str = f"{V3}.1/extracts/", **body: Any) -> httpx.Response:
    return http.post(path, json=body)


def assert_seed_shape(extract: dict[str, Any]) -> None:
    """Lines 26-37: every field the seed names, with its type."""
    for name, kind in SEED_FIELDS.items():
        assert isinstance(extract[name], kind), (name, extract)
    for name in NULLABLE:
        assert name in extract, name
    datetime.fromisoformat(extract["created_at"])
    assert extract["status"] in {"active", "syncing", "paused", "error", "inactive"}
    for name in ("fields", "filters", "additional_params", "schedules", "data_table_id"):
        assert name in extract, name


def wait_idle(http: httpx.Client, extract_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        body: dict[str, Any] = http.get(f"{V3}/extracts/{extract_id}").json()
        if body["status"] != "syncing":
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def rows_of(http: httpx.Client, table_id: str) -> list[dict[str, Any]]:
    r = http.get(f"/api/v1/data-tables/{table_id}/rows", params={"limit": 100})
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["data"]
    return rows


def test_create_get_and_run_an_extract(http: httpx.Client, setup: dict[str, str]) -> None:
    """Lines 13-37 and 74-93: create → 201; get; run with a date range → 200 with the extract
    and execution_id; the data table holds the filtered records and the system columns."""
    filters = [
        {"field": "region", "operator": "in", "value": ["EU", "O'Brien"]},
        {"field": "amount", "operator": ">=", "value": 10},
    ]
    r = create(
        http,
        data_table_title="Orders EU",
        template_id=setup["dated"],
        template_settings={
            "fields": ["id", "region", "amount", "day"],
            "filters": filters,
            "additional_params": {"time_granularity": "day", "nested": {"a": [1, 2]}},
        },
        accounts=["main"],
    )
    assert r.status_code == 201, r.text
    extract = r.json()
    assert_seed_shape(extract)
    assert extract["title"] == "Orders EU"
    assert (extract["connection_id"], extract["account_id"], extract["account_name"]) == (
        setup["connection"],
        "main",
        "main",
    )
    assert (extract["status"], extract["last_sync"], extract["error_text"]) == (
        "active",
        None,
        None,
    )
    assert extract["filters"] == filters  # shown back as given
    assert extract["additional_params"] == {"time_granularity": "day", "nested": {"a": [1, 2]}}
    assert extract["schedules"] == [] and extract["sync_historical_data"] is None
    assert extract["schedules_limit"] == DEFAULT_SCHEDULES_LIMIT  # EGRESS_SCHEDULES_LIMIT
    assert extract["data_table_id"] is None  # created by the first load
    assert http.get(f"{V3}/extracts/{extract['id']}").json() == extract

    run = http.post(
        f"{V3}/extracts/{extract['id']}/run",
        json={"date_from": "2025-02-01", "date_to": "2025-02-03"},
    )
    assert run.status_code == 200, run.text
    assert run.json()["id"] == extract["id"] and run.json()["execution_id"]
    assert_seed_shape(run.json())
    done = wait_idle(http, extract["id"])
    assert done["status"] == "active" and done["last_sync"] is not None, done
    execution = http.get(
        f"/api/v1/extraction-configurations/{extract['id']}/executions/{run.json()['execution_id']}"
    ).json()
    assert execution["latestStatus"] == "COMPLETED", execution
    rows = rows_of(http, done["data_table_id"])
    # 2025-02-04 (O'Brien) is after date_to (inclusive dates); US is filtered out.
    assert [(row["id"], row["region"]) for row in rows] == [(1, "EU"), (3, "EU")]
    for row in rows:
        assert (row["account_id"], row["account_name"]) == ("main", "main")
        assert datetime.fromisoformat(row["__insert_date"]).year >= 2025  # the run's time

    again = http.post(f"{V3}/extracts/{extract['id']}/run")  # body optional
    assert again.status_code == 200, again.text
    wait_idle(http, extract["id"])
    rows = rows_of(http, done["data_table_id"])  # upsert by the key: O'Brien added, no dupes
    assert [row["id"] for row in rows] == [1, 3, 4]


def test_update_replaces_and_patch_leaves_omitted_fields(
    http: httpx.Client, setup: dict[str, str]
) -> None:
    """Lines 38-73: PUT replaces the updatable attributes; PATCH changes only those given."""
    extract = create(
        http,
        path=f"{V3}/extracts",  # the v3 path creates too
        data_table_title="orders_patch",
        template_id=setup["orders"],
        template_settings={
            "fields": ["id", "amount"],
            "filters": [{"field": "amount", "operator": ">", "value": 15}],
            "additional_params": {"k": 1},
        },
    ).json()
    url = f"{V3}/extracts/{extract['id']}"
    patched = http.patch(url, json={"additional_params": {"k": 2}})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert_seed_shape(body)
    assert body["additional_params"] == {"k": 2}
    assert body["fields"] == ["id", "amount"]
    assert body["filters"] == [{"field": "amount", "operator": ">", "value": 15}]
    native = f"/api/v1/extraction-configurations/{extract['id']}"
    assert http.get(native).json()["filter"] == '"amount" > 15'  # the compiled whereClause
    patched = http.patch(url, json={"filters": [{"field": "id", "operator": "is_not_null"}]})
    assert patched.json()["filters"] == [{"field": "id", "operator": "is_not_null", "value": None}]
    assert patched.json()["additional_params"] == {"k": 2}
    assert http.get(native).json()["filter"] == 'NOT "id" IS NULL'
    assert http.patch(native, json={"filter": "id > 1"}).status_code == 200
    assert http.get(url).json()["filters"] == []  # a native whereClause replaces them
    http.patch(url, json={"filters": patched.json()["filters"]})

    replaced = http.put(url, json={"fields": ["id", "region"]})
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["fields"] == ["id", "region"]
    assert (body["filters"], body["additional_params"]) == ([], {})
    assert http.get(url).json() == body
    assert http.get(native).json()["filter"] is None  # no conditions, no filter left behind

    bad_request(http.patch(url, json={"title": "renamed"}), "title")  # not updatable
    bad_request(http.put(url, json={"fields": ["nope"]}), "fields")
    bad_request(
        http.patch(url, json={"filters": [{"field": "amount", "operator": "~", "value": 1}]}),
        "filters.0.operator",
    )
    bad_request(http.patch(url, json={"schedules": [{"cron": "0 * * *"}]}), "schedules.0.cron")
    assert http.get(f"{V3}/extracts/nope").status_code == 404
    assert http.get(f"{V3}/extracts/nope").json()["details"]


def test_schedules_backfill_pause_and_resume(http: httpx.Client, setup: dict[str, str]) -> None:
    """Lines 6, 10, 36-39 and 57: schedules (the native items, snake_case, kept by ``id``),
    ``schedules_limit``, ``sync_historical_data``; pause and resume."""
    nightly = {"cron": "0 2 * * *", "timezone": "Europe/London", "date_window": "previousDay"}
    r = create(http, data_table_title="scheduled", template_id=setup["dated"], schedules=[nightly])
    assert r.status_code == 201, r.text
    extract = r.json()
    assert_seed_shape(extract)
    [schedule] = extract["schedules"]
    assert {k: schedule[k] for k in nightly} == nightly and schedule["enabled"] is True
    assert schedule["id"] and schedule["next_run_at"] is not None
    url = f"{V3}/extracts/{extract['id']}"
    assert http.get(url).json() == extract
    native = f"/api/v1/extraction-configurations/{extract['id']}"
    assert [s["id"] for s in http.get(native).json()["schedules"]] == [schedule["id"]]

    patched = http.patch(url, json={"additional_params": {"k": 1}})  # schedules left alone
    assert patched.status_code == 200, patched.text
    assert patched.json()["schedules"] == extract["schedules"]
    hourly = {"cron": "@hourly", "timezone": "UTC", "enabled": True, "date_window": None}
    patched = http.patch(url, json={"schedules": [{**nightly, "id": schedule["id"]}, hourly]})
    assert patched.status_code == 200, patched.text
    kept, added = patched.json()["schedules"]
    assert kept == schedule  # matched by id: same slot
    assert added["id"] not in (None, schedule["id"]) and added["cron"] == "@hourly"

    paused = http.post(f"{url}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    assert [s["next_run_at"] for s in paused.json()["schedules"]] == [None, None]
    assert http.get(native).json()["paused"] is True
    # While paused nothing fires, so the backfill can be set without runs starting.
    backfill = http.patch(url, json={"sync_historical_data": "2025-02-01"})
    assert backfill.status_code == 200, backfill.text
    assert backfill.json()["sync_historical_data"] == "2025-02-01"
    assert backfill.json()["status"] == "paused"
    assert http.get(native).json()["syncHistoricalData"] == "2025-02-01"

    # PUT replaces: the schedule given stays (by id), the one left out and the backfill go.
    replaced = http.put(url, json={"schedules": [{**nightly, "id": schedule["id"]}]})
    assert replaced.status_code == 200, replaced.text
    assert [s["id"] for s in replaced.json()["schedules"]] == [schedule["id"]]
    assert replaced.json()["sync_historical_data"] is None

    resumed = http.post(f"{url}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "active"
    assert resumed.json()["schedules"][0]["next_run_at"] is not None
    assert http.get(native).json()["paused"] is False

    body = bad_request(http.patch(url, json={"schedules": [{"id": "nope", "cron": "@daily"}]}))
    assert [e["field"] for e in body["errors"]] == ["schedules.0.id"]
    bad_request(http.patch(url, json={"schedules": [{"cron": "@daily", "x": 1}]}), "schedules.0.x")
    too_many = [{"cron": "@daily"}] * (DEFAULT_SCHEDULES_LIMIT + 1)
    bad_request(http.patch(url, json={"schedules": too_many}), "schedules")
    body = bad_request(http.patch(url, json={"sync_historical_data": "2999-01-01"}))
    assert "before today" in body["detail"]
    assert http.post(f"{V3}/extracts/nope/pause").status_code == 404
    undated = create(
        http, data_table_title="undated", template_id=setup["events"], schedules=[nightly]
    )
    body = bad_request(undated, "schedules.0.date_window")  # named as sent
    assert "no dateField" in body["detail"]


def test_accounts_of_one_connection(http: httpx.Client, setup: dict[str, str]) -> None:
    """Lines 3 and 14: an extract reads one account of its template's connection."""
    r = http.get(f"{V3}/connections/{setup['connection']}/accounts")
    assert r.status_code == 200, r.text
    assert r.json() == {"results": [{"id": "main", "account_id": "main", "title": "main"}]}
    assert http.get(f"{V3}/connections/nope/accounts").status_code == 404

    base = {"data_table_title": "accounts_check", "template_id": setup["events"]}
    body = bad_request(create(http, **base, accounts=["main", "main"]), "accounts")
    assert "one account" in body["detail"]
    body = bad_request(create(http, **base, accounts=["temp"]), "accounts.0")
    assert f"not an account of connection {setup['connection']}" in body["detail"]
    body = bad_request(create(http, **base, extra=1), "extra")
    bad_request(create(http, data_table_title="x"), "template_id")
    bad_request(
        create(http, **base, template_settings={"fields": ["kind", "nope"]}),
        "template_settings.fields",
    )
    bad_request(
        create(http, **base, template_settings={"filters": [{"field": "n", "operator": "~"}]}),
        "template_settings.filters.0.operator",
    )
    bad_request(
        create(
            http,
            **base,
            template_settings={
                "filters": [{"field": "kind", "operator": "contains", "value": "50%"}]
            },
        ),
        "template_settings.filters.0.value",
    )
    body = bad_request(
        create(http, **base, sync_historical_data="2025-02-25"), "sync_historical_data"
    )
    assert "no dateField" in body["detail"]
    # The system columns (account_id, ...) cannot overwrite a source column of that name.
    clash = template(http, setup["connection"], "main.clash")["id"]
    body = bad_request(
        create(http, data_table_title="clash", template_id=clash), "template_settings.fields"
    )
    assert "'account_id'" in body["detail"]
    assert create(http, **base, accounts=["main"]).status_code == 201


def test_run_problems_and_status(http: httpx.Client, setup: dict[str, str], source: Path) -> None:
    """Lines 34-35 and 74-80: a date range needs the template's date field; a failed run
    makes the status ``error`` with its ``error_text``."""
    extract = create(http, data_table_title="events copy", template_id=setup["events"]).json()
    url = f"{V3}/extracts/{extract['id']}"
    bad_request(http.post(f"{url}/run", json={"date_from": "2025-01-01"}), "date_from")
    bad_request(http.post(f"{url}/run", json={"date_from": "2025-01-01", "x": 1}), "x")
    with sqlite3.connect(source) as conn:
        conn.execute("ALTER TABLE events RENAME COLUMN n TO m")
    try:
        assert http.post(f"{url}/run").status_code == 200
        failed = wait_idle(http, extract["id"])
    finally:
        with sqlite3.connect(source) as conn:
            conn.execute("ALTER TABLE events RENAME COLUMN m TO n")
    assert failed["status"] == "error" and "'n'" in failed["error_text"], failed
    assert failed["last_sync"] is None


def test_list_paginates_as_the_vendor(http: httpx.Client, setup: dict[str, str]) -> None:
    """``GET /api/v3/extracts`` → {count, next, previous, results}, filtered by connection and
    data table."""
    made = [
        create(http, data_table_title=f"listed {i}", template_id=setup["events"]).json()
        for i in range(3)
    ]
    everything = http.get(f"{V3}/extracts").json()
    assert set(everything) == {"count", "next", "previous", "results"}
    assert everything["count"] >= 3 and everything["next"] is None
    first = http.get(f"{V3}/extracts", params={"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["previous"] is None
    second = httpx.get(first["next"], headers=http.headers).json()
    assert second["previous"] and "page=1" in second["previous"]
    assert http.get(f"{V3}/extracts", params={"page": 0}).status_code == 400
    mine = http.get(f"{V3}/extracts", params={"connection_id": setup["other_connection"]})
    assert mine.json()["count"] == 0
    listed = {e["id"] for e in everything["results"]}
    assert {e["id"] for e in made} <= listed
    for e in everything["results"]:
        assert_seed_shape(e)
    loaded = next(e for e in everything["results"] if e["data_table_id"] is not None)
    by_table = http.get(f"{V3}/extracts", params={"data_table_id": loaded["data_table_id"]})
    assert [e["id"] for e in by_table.json()["results"]] == [loaded["id"]]


def test_datasources_connections_and_templates(http: httpx.Client, setup: dict[str, str]) -> None:
    datasources = http.get(f"{V3}/datasources").json()
    names = [d["name"] for d in datasources["results"]]
    assert {"postgresql", "mysql", "sqlite", "files"} == set(names)
    connections = http.get(f"{V3}/datasources/sqlite/connections").json()
    assert {c["id"] for c in connections["results"]} == {
        setup["connection"],
        setup["other_connection"],
    }
    assert http.get(f"{V3}/datasources/postgresql/connections").json()["count"] == 0
    templates = http.get(f"{V3}/datasources/sqlite/extract-templates").json()
    assert setup["dated"] in {t["id"] for t in templates["results"]}
    missing = http.get(f"{V3}/datasources/oracle/connections")
    assert missing.status_code == 404 and missing.json()["details"]


def test_another_workspace_sees_nothing(
    server: Server, http: httpx.Client, setup: dict[str, str]
) -> None:
    """Extracts, connections and accounts of another workspace are 404 (never 403)."""
    mine = create(http, data_table_title="private", template_id=setup["events"]).json()
    create_workspace(server, "elsewhere")
    with api(server, create_token(server, "elsewhere", "admin")) as other:
        assert other.get(f"{V3}/extracts/{mine['id']}").status_code == 404
        assert other.patch(f"{V3}/extracts/{mine['id']}", json={}).status_code == 404
        assert other.post(f"{V3}/extracts/{mine['id']}/run").status_code == 404
        assert other.post(f"{V3}/extracts/{mine['id']}/pause").status_code == 404
        assert other.post(f"{V3}/extracts/{mine['id']}/resume").status_code == 404
        assert other.put(f"{V3}/extracts/{mine['id']}", json={}).status_code == 404
        assert other.get(f"{V3}/extracts").json()["count"] == 0
        assert other.get(f"{V3}/connections/{setup['connection']}/accounts").status_code == 404
        assert other.get(f"{V3}/datasources/sqlite/connections").json()["count"] == 0
        taken = create(other, data_table_title="x", template_id=setup["events"])
        bad_request(taken, "template_id")


@pytest.mark.parametrize("prefix", [V3, f"{V3}.1"])
def test_every_face_route_needs_a_token(server: Server, prefix: str) -> None:
    spec = httpx.get(f"{server.base_url}{prefix}/openapi.json").json()
    assert spec["paths"]
    with anonymous(server) as client:
        for path, methods in spec["paths"].items():
            concrete = prefix + re.sub(r"\{[^}]+\}", "x", path)
            for method in methods:
                r = client.request(method.upper(), concrete)
                assert r.status_code == 401, (method, concrete, r.text)
                assert r.json()["details"] == "a bearer token is required"


@pytest.mark.parametrize("prefix", [V3, f"{V3}.1"])
def test_every_face_route_declares_its_role_and_refuses_a_lower_one(
    server: Server, prefix: str
) -> None:
    """The face's own document, walked like the native route matrix: a route added later must
    declare its minimum role, and a token below it is 403 before anything is looked up."""
    spec = httpx.get(f"{server.base_url}{prefix}/openapi.json").json()
    ranks = {"viewer": 0, "editor": 1, "admin": 2}
    tokens = {role: create_token(server, "default", role) for role in ("viewer", "editor")}
    for path, methods in spec["paths"].items():
        concrete = prefix + re.sub(r"\{[^}]+\}", "x", path)
        for method, op in methods.items():
            role = op.get("x-egress-role")
            assert role in ranks, (method, path, role)
            for lower in [r for r in tokens if ranks[r] < ranks[role]]:
                with api(server, tokens[lower]) as client:
                    r = client.request(method.upper(), concrete, json={})
                assert r.status_code == 403, (lower, method, concrete, r.text)


def test_a_viewer_reads_and_an_editor_changes(
    server: Server, http: httpx.Client, setup: dict[str, str]
) -> None:
    mine = create(http, data_table_title="roles", template_id=setup["events"]).json()
    with api(server, create_token(server, "default", "viewer")) as viewer:
        assert viewer.get(f"{V3}/extracts/{mine['id']}").status_code == 200
        assert viewer.get(f"{V3}/connections/{setup['connection']}/accounts").status_code == 200
        for r in (
            viewer.patch(f"{V3}/extracts/{mine['id']}", json={}),
            viewer.post(f"{V3}/extracts/{mine['id']}/run"),
            viewer.post(f"{V3}/extracts/{mine['id']}/pause"),
            viewer.post(f"{V3}/extracts/{mine['id']}/resume"),
            create(viewer, data_table_title="no", template_id=setup["events"]),
        ):
            assert r.status_code == 403, r.text
            assert r.json()["details"] == r.json()["detail"]
