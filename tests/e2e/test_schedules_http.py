"""Schedules over HTTP against a real `egress serve` (worker and scheduler embedded): the
fields on configurations, the sub-routes, the problems for bad input, pause/resume, the
half-open native trigger — and a `* * * * *` schedule observed to fire within the minute
(the one slow test of this module: up to ~60 s of real time)."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.e2e.helpers import CONFIGS, DONE, api, problem, sqlite_connection
from tests.support.identity import create_token

API = "/api/v1"


@pytest.fixture(scope="module")
def template_id(http: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    db = tmp_path_factory.mktemp("schedules_src") / "events.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, happened TIMESTAMP)")
        conn.executemany(
            "INSERT INTO events VALUES (?, ?)",
            [(1, "2026-01-01 00:00:00"), (2, "2026-01-01 12:00:00"), (3, "2026-01-02 00:00:00")],
        )
    connection = sqlite_connection(http, db, "events")
    r = http.post(
        f"{API}/templates",
        json={
            "connectionId": connection,
            "name": "events",
            "table": "main.events",
            "primaryKey": ["id"],
            "dateField": "happened",
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _create(http: httpx.Client, template_id: str, name: str, **body: Any) -> httpx.Response:
    payload = {
        "name": name,
        "templateId": template_id,
        "format": "csv",
        "destination": {"type": "storage", "path": "out"},
        **body,
    }
    return http.post(CONFIGS, json=payload)


DAILY = {"cron": "0 2 * * *", "timezone": "Europe/London", "dateWindow": "previousDay"}


def test_schedules_on_configurations_and_their_sub_routes(
    http: httpx.Client, template_id: str
) -> None:
    r = _create(http, template_id, "nightly", schedules=[DAILY], syncHistoricalData="2026-01-01")
    assert r.status_code == 201, r.text
    cfg = r.json()
    assert cfg["schedulesLimit"] is None and cfg["paused"] is False
    assert (cfg["syncStatus"], cfg["lastSync"], cfg["errorText"]) == ("inactive", None, None)
    assert cfg["backfill"]["from"] == "2026-01-01" and cfg["backfillWindow"] == "month"
    [schedule] = cfg["schedules"]
    assert schedule["nextRunAt"] is None  # a draft does not fire
    sid = schedule["id"]
    base = f"{CONFIGS}/{cfg['id']}"
    assert http.get(f"{base}/schedules/{sid}").json()["nextRunAt"] is None
    # submitted but paused: still no backfill window or schedule fires
    assert http.post(f"{base}/pause").json()["syncStatus"] == "inactive"
    submitted = http.post(f"{base}/submit").json()
    assert submitted["syncStatus"] == "paused"
    resumed = http.post(f"{base}/resume").json()
    assert resumed["syncStatus"] == "active"
    shown = resumed["schedules"][0]
    assert shown["nextRunAt"].endswith("Z") and shown["nextRunAtLocal"][-6:] in ("+00:00", "+01:00")

    preview = http.get(f"{base}/schedules/{sid}/preview", params={"count": 3}).json()["data"]
    assert len(preview) == 3 and preview[0]["at"] == shown["nextRunAt"]
    assert all(p["atLocal"][11:16] == "02:00" for p in preview)

    # sub-routes: add, change (the id stays), delete
    added = http.post(f"{base}/schedules", json={"cron": "@hourly"})
    assert added.status_code == 201, added.text
    assert added.json()["timezone"] == "UTC" and added.json()["enabled"] is True
    assert added.json()["nextRunAt"].endswith(":00:00Z")  # @hourly, the configuration fires
    changed = http.patch(f"{base}/schedules/{sid}", json={"cron": "30 3 * * *"})
    assert changed.status_code == 200 and changed.json()["id"] == sid
    assert changed.json()["cron"] == "30 3 * * *"
    listed = http.get(f"{base}/schedules").json()
    assert [s["id"] for s in listed] == [sid, added.json()["id"]]
    # a PUT matching by id keeps the schedule (and its state)
    put = http.put(
        base,
        json={
            "name": "nightly",
            "templateId": template_id,
            "format": "csv",
            "destination": {"type": "storage", "path": "out"},
            "schedules": [{**DAILY, "id": sid}],
        },
    )
    assert put.status_code == 200, put.text
    assert [s["id"] for s in put.json()["schedules"]] == [sid]
    assert put.json()["syncHistoricalData"] is None and put.json()["backfill"] is None
    assert http.delete(f"{base}/schedules/{sid}").status_code == 204
    problem(http.get(f"{base}/schedules/{sid}"), 404)
    assert http.get(base).json()["schedules"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"schedules": [{"cron": "0 2 * * * *"}]}, "schedules.0.cron"),
        ({"schedules": [{"cron": "@yearly"}]}, "schedules.0.cron"),
        ({"schedules": [{"cron": "0 2 * * *", "timezone": "Mars/Base"}]}, "schedules.0.timezone"),
        (
            {"schedules": [{"cron": "0 2 * * *", "dateWindow": "yesterday"}]},
            "schedules.0.dateWindow",
        ),
        ({"schedules": [{"cron": "@daily"}] * 6}, "schedules"),
        ({"syncHistoricalData": "2026-13-01"}, "syncHistoricalData"),
        ({"syncHistoricalData": "2999-01-01"}, "syncHistoricalData"),
        ({"backfillWindow": "year"}, "backfillWindow"),
    ],
)
def test_bad_schedules_are_422_naming_the_field(
    http: httpx.Client, template_id: str, body: dict[str, Any], field: str
) -> None:
    body = problem(_create(http, template_id, "bad", **body), 422, field)
    assert body["errors"]


def test_only_admins_raise_the_limit(http: httpx.Client, template_id: str, server: Server) -> None:
    with api(server, create_token(server, "default", "editor")) as as_editor:
        problem(_create(as_editor, template_id, "limited", schedulesLimit=6), 403)
        lower = _create(as_editor, template_id, "lower", schedulesLimit=2)
        assert lower.status_code == 201 and lower.json()["schedulesLimit"] == 2
    raised = _create(http, template_id, "raised", schedulesLimit=7, schedules=[DAILY] * 7)
    assert raised.status_code == 201, raised.text
    assert len(raised.json()["schedules"]) == 7


def test_the_native_trigger_takes_a_half_open_range(http: httpx.Client, template_id: str) -> None:
    r = _create(http, template_id, "halfopen")
    cfg = r.json()["id"]
    http.post(f"{CONFIGS}/{cfg}/submit")
    ids = []
    for exclusive in (True, False):
        body = {"dateFrom": "2026-01-01", "dateTo": "2026-01-02T00:00:00Z"}
        if exclusive:
            body["dateToExclusive"] = True
        execution = http.post(f"{CONFIGS}/{cfg}/executions", json=body).json()
        assert execution["options"].get("dateToExclusive", False) is exclusive
        ids.append(_records(http, cfg, execution["id"]))
    assert ids == [["1", "2"], ["1", "2", "3"]]


def _finished(http: httpx.Client, cfg: str, execution_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body: dict[str, Any] = http.get(f"{CONFIGS}/{cfg}/executions/{execution_id}").json()
        if body["latestStatus"] in DONE:
            return body
        time.sleep(0.1)
    raise AssertionError("the execution did not finish")


def _records(http: httpx.Client, cfg: str, execution_id: str) -> list[str]:
    body = _finished(http, cfg, execution_id)
    assert body["latestStatus"] == "COMPLETED", body
    text = http.get(f"{CONFIGS}/{cfg}/executions/{execution_id}/download").text
    return [line.split(",")[0] for line in text.splitlines()[1:]]


def test_an_every_minute_schedule_fires_within_the_minute(
    http: httpx.Client, template_id: str
) -> None:
    r = _create(http, template_id, "every-minute", schedules=[{"cron": "* * * * *"}])
    cfg = r.json()["id"]
    submitted = http.post(f"{CONFIGS}/{cfg}/submit").json()
    due = submitted["schedules"][0]["nextRunAt"]
    deadline = time.monotonic() + 75  # the next minute boundary, plus a round
    while time.monotonic() < deadline:
        listed = http.get(f"{CONFIGS}/{cfg}/executions").json()["data"]
        if listed:
            break
        time.sleep(0.5)
    assert len(listed) == 1, "no scheduled execution within the minute"
    execution = _finished(http, cfg, listed[0]["id"])
    assert execution["trigger"] == "schedule"
    assert execution["scheduleId"] == submitted["schedules"][0]["id"]
    assert execution["dueAt"].replace("+00:00", "Z") == due
    assert execution["catchUp"] is False and execution["latestStatus"] == "COMPLETED"
    after = http.get(f"{CONFIGS}/{cfg}").json()
    assert after["lastSync"] is not None and after["schedules"][0]["lastFiredAt"] is not None


def test_a_patched_schedule_without_a_timezone_is_utc(http: httpx.Client, template_id: str) -> None:
    """PATCH passed its items as sent, and one without ``timezone`` was a KeyError (500)."""
    r = _create(http, template_id, "zoneless", schedules=[DAILY])
    assert r.status_code == 201, r.text
    cfg = r.json()
    sid = cfg["schedules"][0]["id"]
    patched = http.patch(
        f"{CONFIGS}/{cfg['id']}",
        json={"schedules": [{"id": sid, "cron": "@hourly"}, {"cron": "0 3 * * *"}]},
    )
    assert patched.status_code == 200, patched.text
    shown = patched.json()["schedules"]
    assert [(s["cron"], s["timezone"]) for s in shown] == [("@hourly", "UTC"), ("0 3 * * *", "UTC")]
    assert shown[0]["id"] == sid
