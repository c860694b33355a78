"""Seed 000 (../shared/seeds/000_…txt; a copy in tests/support/seeds/), walked paragraph by
paragraph over HTTP: the list and details shapes are read from the seed's own JSON examples
and every field is checked with its type; then the trigger, re-run, download and sub-extract
rules it states. What Egress does differently on purpose is listed in the README
("Differences from the seed API")."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from egress.domain.status import RunStatus
from tests.conftest import wait_for_status
from tests.e2e.helpers import (
    CONFIGS,
    DONE,
    api,
    configuration,
    problem,
    running_server,
    sqlite_connection,
    template,
    trigger,
    unsigned,
)

# A copy of ../shared/seeds/000_…txt kept with the tests, so a clone alone can check itself.
SEED = Path(__file__).resolve().parents[1] / "support" / "seeds" / "000_ac964c293e1e0891.txt"
REGIONS = ("EU", "NA", "APAC")
ROWS = [(i, REGIONS[i % 3], i * 1.5) for i in range(1, 13)]  # four rows per region
STATUSES = {s.value for s in RunStatus}
# The seed writes "2026-05-28T14:00:00Z"; Egress adds microseconds (a listed difference).
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")
# The seed's numbered example lines: "1{", "2 \"data\": [", … (the number, then the JSON).
_NUMBERED = re.compile(r"^(\d+)(.*)$")


def _seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


def seed_examples(text: str) -> list[Any]:
    """Every JSON example of the seed, in order: runs of lines numbered 1, 2, 3, …"""
    examples: list[Any] = []
    block: list[str] = []
    for line in text.splitlines():
        match = _NUMBERED.match(line)
        if match and int(match[1]) == len(block) + 1:
            block.append(match[2])
            continue
        if block:
            examples.append(json.loads("\n".join(block)))
            block = []
    if block:
        examples.append(json.loads("\n".join(block)))
    return examples


@pytest.fixture(scope="module")
def seed() -> dict[str, Any]:
    listing, details = seed_examples(_seed_text())
    assert set(listing) == {"data", "page", "limit", "totalSize", "totalPages"}
    assert "runs" in details
    return {"list": listing, "details": details}


def conforms(ours: Any, seed: Any, nullable: set[str], path: str = "") -> None:
    """``ours`` has every field of the seed's example ``seed`` with the same JSON type; a
    status is one of the run statuses and a timestamp is ISO 8601 in UTC; ``null`` only for
    the fields in ``nullable`` (paths such as ``runs[].errorMessage``)."""
    if ours is None:
        assert path in nullable, f"{path} is null"
    elif isinstance(seed, dict):
        assert isinstance(ours, dict), f"{path or 'body'} is {ours!r}, not an object"
        for key, value in seed.items():
            assert key in ours, f"{path}.{key} is missing from {sorted(ours)}"
            conforms(ours[key], value, nullable, f"{path}.{key}" if path else key)
    elif isinstance(seed, list):
        assert isinstance(ours, list) and ours, f"{path} is {ours!r}, not a non-empty list"
        for item in ours:
            conforms(item, seed[0], nullable, f"{path}[]")
    elif path.endswith("tatus"):
        assert ours in STATUSES, f"{path} = {ours!r}"
    elif isinstance(seed, str) and ISO_UTC.fullmatch(seed):
        assert isinstance(ours, str) and ISO_UTC.fullmatch(ours), f"{path} = {ours!r}"
    else:
        assert type(ours) is type(seed), f"{path} = {ours!r}, the seed has {seed!r}"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("seed000-src") / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT, amount REAL)")
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?)", ROWS)
    return db


@pytest.fixture(scope="module")
def template_id(http: httpx.Client, shop: Path) -> str:
    return str(template(http, sqlite_connection(http, shop, "seed000"), "main.orders")["id"])


def _finished(http: httpx.Client, cfg: str, eid: str) -> dict[str, Any]:
    return dict(wait_for_status(http, cfg, eid, DONE))


def _csv_ids(content: bytes) -> list[int]:
    return sorted(int(r["id"]) for r in csv.DictReader(io.StringIO(content.decode())))


# --- "Only submitted extracts, i.e. extracts which don't have a DRAFT status and have not yet
# reached their end date can be triggered"
def test_only_submitted_configurations_before_their_end_date_can_be_triggered(
    http: httpx.Client, template_id: str
) -> None:
    draft = http.post(
        CONFIGS,
        json={
            "name": "draft",
            "templateId": template_id,
            "format": "csv",
            "destination": {"type": "storage", "path": "out"},
        },
    ).json()
    assert "DRAFT" in problem(http.post(f"{CONFIGS}/{draft['id']}/executions"), 409)["detail"]
    ended = configuration(http, template_id, "ended", endDate="2020-01-01")
    assert "end" in problem(http.post(f"{CONFIGS}/{ended}/executions"), 409)["detail"]
    for cfg in (draft["id"], ended):
        assert http.get(f"{CONFIGS}/{cfg}/executions").json()["totalSize"] == 0
    submitted = configuration(http, template_id, "submitted")
    assert trigger(http, submitted)["latestStatus"] in {"PENDING", "IN_PROGRESS", "COMPLETED"}


# --- "List executions for a given extract configuration … this list will include re-runs"
def test_the_list_has_the_seed_shape_and_counts_re_runs(
    http: httpx.Client, template_id: str, seed: dict[str, Any]
) -> None:
    cfg = configuration(http, template_id, "listed")
    eid = trigger(http, cfg)["id"]
    _finished(http, cfg, eid)
    assert http.post(f"{CONFIGS}/{cfg}/executions/{eid}/rerun").status_code == 202
    details = _finished(http, cfg, eid)
    listing = http.get(f"{CONFIGS}/{cfg}/executions").json()
    conforms(listing, seed["list"], nullable=set())
    assert (listing["page"], listing["totalSize"], listing["totalPages"]) == (0, 1, 1)
    latest = details["runs"][-1]
    assert listing["data"] == [
        {
            "id": eid,
            "extractConfigurationId": cfg,
            "latestStatus": "COMPLETED",
            "latestStartedAt": latest["startedAt"],
            "latestCompletedAt": latest["completedAt"],
            "latestRunRecordCount": len(ROWS),
            "totalRuns": 2,
        }
    ]


# --- "Get execution details of a triggered extraction … including execution history with
# re-runs and latest status"
def test_details_have_the_seed_shape_with_every_run(
    http: httpx.Client, template_id: str, seed: dict[str, Any]
) -> None:
    cfg = configuration(
        http, template_id, "detailed", destination={"type": "storage", "path": "exports/orders"}
    )
    eid = trigger(http, cfg)["id"]
    _finished(http, cfg, eid)
    http.post(f"{CONFIGS}/{cfg}/executions/{eid}/rerun")
    details = _finished(http, cfg, eid)

    conforms(details, seed["details"], nullable={"runs[].errorMessage"})
    first, second = details["runs"]
    assert (details["extractConfigurationName"], details["extractConfigurationId"]) == (
        "detailed",
        cfg,
    )
    assert (details["latestStatus"], details["latestRecordCount"]) == ("COMPLETED", len(ROWS))
    assert details["latestProcessId"] == second["processId"]
    assert [(r["run"], r["status"], r["recordCount"]) for r in details["runs"]] == [
        (1, "COMPLETED", len(ROWS)),
        (2, "COMPLETED", len(ROWS)),
    ]
    for run in (first, second):
        assert run["kind"] == "extract"  # our documented addition to the seed's run shape
        assert run["startedAt"] <= run["completedAt"]
        # The seed's downloadUrl: …/executions/{id}/download?run=N, relative to the host.
        url = f"{CONFIGS}/{cfg}/executions/{eid}/download?run={run['run']}"
        assert run["file"]["downloadUrl"] == url
        # The seed's fileName is the file's path: "/namespace/Journal/…_April_v1.csv".
        name = run["file"]["name"]
        assert re.fullmatch(rf"detailed_\S+_v{run['run']}\.csv", name), name
        assert run["file"]["fileName"] == f"/exports/orders/{name}"


def test_a_failed_run_shows_its_error_message(
    http: httpx.Client, tmp_path: Path, seed: dict[str, Any]
) -> None:
    db = tmp_path / "fragile.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE gone (id INTEGER PRIMARY KEY)")
    tpl = template(http, sqlite_connection(http, db, "fragile"), "main.gone")
    cfg = configuration(http, tpl["id"], "failing")
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE gone")
    eid = trigger(http, cfg)["id"]
    details = _finished(http, cfg, eid)
    assert details["latestStatus"] == "FAILED"
    # A failed run has no file; everything else is there, typed as in the seed.
    conforms(details, seed["details"], nullable={"runs[].file"})
    (run,) = details["runs"]
    assert "gone" in run["errorMessage"] and run["file"] is None


# --- "The execution must be in a re-runnable state, i.e. Completed or Failed status, and not
# e.g. Completed (no data), On hold, etc."
def test_only_completed_or_failed_runs_can_be_re_run(
    http: httpx.Client, template_id: str, tmp_path: Path
) -> None:
    done = configuration(http, template_id, "rerun_done")
    eid = trigger(http, done)["id"]
    _finished(http, done, eid)
    r = http.post(f"{CONFIGS}/{done}/executions/{eid}/rerun")
    assert r.status_code == 202 and r.json()["runs"][-1]["run"] == 2

    empty = configuration(http, template_id, "rerun_empty", filter="id < 0")
    eid = trigger(http, empty)["id"]
    assert _finished(http, empty, eid)["latestStatus"] == "COMPLETED_NO_DATA"
    refused = problem(http.post(f"{CONFIGS}/{empty}/executions/{eid}/rerun"), 409)
    assert "COMPLETED_NO_DATA" in refused["detail"]

    db = tmp_path / "flaky.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    tpl = template(http, sqlite_connection(http, db, "flaky"), "main.t")
    flaky = configuration(http, tpl["id"], "rerun_failed")
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE t")
    eid = trigger(http, flaky)["id"]
    assert _finished(http, flaky, eid)["latestStatus"] == "FAILED"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (7)")
    assert http.post(f"{CONFIGS}/{flaky}/executions/{eid}/rerun").status_code == 202
    details = _finished(http, flaky, eid)
    assert [r["status"] for r in details["runs"]] == ["FAILED", "COMPLETED"]
    assert details["latestRecordCount"] == 1


def test_queued_and_cancelled_runs_cannot_be_re_run(
    shop: Path, tmp_path: Path, seed: dict[str, Any]
) -> None:
    """PENDING and ON_HOLD held still by a server without a worker."""
    with running_server(tmp_path, args=("--no-worker",)) as idle, api(idle) as http:
        tpl = template(http, sqlite_connection(http, shop, "idle"), "main.orders")["id"]
        cfg = configuration(http, tpl, "rerun_queued")
        first, second = trigger(http, cfg), trigger(http, cfg)
        assert (first["latestStatus"], second["latestStatus"]) == ("PENDING", "ON_HOLD")
        # A queued run has not started: what a start or an end would fill in is null.
        unstarted = {"processId", "recordCount", "startedAt", "completedAt"}
        nullable = {"latestProcessId", "latestRecordCount", "runs[].errorMessage", "runs[].file"}
        conforms(second, seed["details"], nullable | {f"runs[].{k}" for k in unstarted})
        listing = http.get(f"{CONFIGS}/{cfg}/executions").json()
        nullable = {"data[].latestStartedAt", "data[].latestCompletedAt"}
        conforms(listing, seed["list"], nullable | {"data[].latestRunRecordCount"})
        urls = [f"{CONFIGS}/{cfg}/executions/{e['id']}" for e in (first, second)]
        for url, status in zip(urls, ("PENDING", "ON_HOLD"), strict=True):
            assert status in problem(http.post(f"{url}/rerun"), 409)["detail"]
        for url in urls:
            assert http.post(f"{url}/cancel").json()["latestStatus"] == "CANCELLED"
            assert "CANCELLED" in problem(http.post(f"{url}/rerun"), 409)["detail"]
            assert len(http.get(url).json()["runs"]) == 1


# --- "Only results from extracts which send their output to Cloud Storage can be downloaded.
# For extracts with Split by option configured you can download only one of the split extracts"
def test_only_storage_destinations_are_downloadable(http: httpx.Client, template_id: str) -> None:
    stored = configuration(http, template_id, "stored")
    eid = trigger(http, stored)["id"]
    details = _finished(http, stored, eid)
    r = http.get(details["runs"][0]["file"]["downloadUrl"])
    assert r.status_code == 200
    assert _csv_ids(r.content) == [row[0] for row in ROWS]
    assert details["runs"][0]["file"]["name"] in r.headers["content-disposition"]

    loaded = configuration(
        http, template_id, "loaded", destination={"type": "dataTable", "dataTable": "seed_orders"}
    )
    eid = trigger(http, loaded)["id"]
    details = _finished(http, loaded, eid)
    assert details["latestStatus"] == "COMPLETED" and details["runs"][0]["file"] is None
    base = f"{CONFIGS}/{loaded}/executions/{eid}"
    for url in (f"{base}/download", f"{base}/download?run=1", f"{base}/sub-extracts/all/download"):
        assert "storage" in problem(http.get(url), 409)["detail"]


def test_a_split_run_downloads_one_part_or_all(http: httpx.Client, template_id: str) -> None:
    cfg = configuration(http, template_id, "split", splitBy="region")
    eid = trigger(http, cfg)["id"]
    details = _finished(http, cfg, eid)
    parts = {p["value"]: p for p in details["subExtracts"]}
    assert set(parts) == set(REGIONS)
    for value, part in parts.items():
        want = [row[0] for row in ROWS if row[1] == value]
        r = http.get(part["file"]["downloadUrl"])
        assert r.status_code == 200 and _csv_ids(r.content) == want
        assert part["file"]["fileName"] == f"/out/{part['file']['name']}"
    whole = http.get(details["runs"][0]["file"]["downloadUrl"])
    assert whole.status_code == 200
    with zipfile.ZipFile(io.BytesIO(whole.content)) as archive:
        assert sorted(archive.namelist()) == sorted(p["file"]["name"] for p in parts.values())


# --- "Get the status of one sub-extract of an execution … For non-split extracts this endpoint
# will return the status of the entire extract."
def test_sub_extract_status_of_split_and_unsplit_runs(http: httpx.Client, template_id: str) -> None:
    split = configuration(http, template_id, "split_status", splitBy="region")
    eid = trigger(http, split)["id"]
    details = _finished(http, split, eid)
    for part in details["subExtracts"]:
        r = http.get(f"{CONFIGS}/{split}/executions/{eid}/sub-extracts/{part['id']}")
        assert r.status_code == 200
        status = r.json()
        assert (status["status"], status["recordCount"], status["run"]) == ("COMPLETED", 4, 1)
        assert (status["id"], status["value"], status["executionId"]) == (
            part["id"],
            part["value"],
            eid,
        )
    problem(http.get(f"{CONFIGS}/{split}/executions/{eid}/sub-extracts/all"), 404)

    whole = configuration(http, template_id, "whole_status")
    eid = trigger(http, whole)["id"]
    details = _finished(http, whole, eid)
    r = http.get(f"{CONFIGS}/{whole}/executions/{eid}/sub-extracts/all")
    assert r.status_code == 200
    status = r.json()
    assert (status["status"], status["recordCount"]) == (
        details["latestStatus"],
        details["latestRecordCount"],
    )
    # Each answer signs its own links (their expiry moves on): the rest is the same file.
    assert unsigned(status["file"]) == unsigned(details["runs"][0]["subExtracts"][0]["file"])
