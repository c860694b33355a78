"""The queue as a user sees it, made deterministic by a server without a worker: runs stay
PENDING until cancelled, so every "not now" answer (409) can be checked exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from egress.demo import create_orders_db
from tests.conftest import Server, wait_for_status
from tests.e2e.helpers import (
    CONFIGS,
    api,
    configuration,
    problem,
    running_server,
    sqlite_connection,
    template,
    trigger,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("queue"), args=("--no-worker",)) as s:
        yield s


@pytest.fixture(scope="module")
def template_id(http: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    db = create_orders_db(tmp_path_factory.mktemp("src") / "shop.db", rows=10)
    return str(template(http, sqlite_connection(http, db, "shop"), "main.orders")["id"])


def test_a_queued_run_blocks_rerun_and_deletion_until_cancelled(
    http: httpx.Client, template_id: str
) -> None:
    cfg = configuration(http, template_id, "queued")
    base = f"{CONFIGS}/{cfg}"

    first = trigger(http, cfg)
    assert first["latestStatus"] == "PENDING"
    assert [(r["run"], r["status"], r["file"]) for r in first["runs"]] == [(1, "PENDING", None)]
    first_url = f"{base}/executions/{first['id']}"
    assert http.get(first_url).json()["latestStatus"] == "PENDING"

    # Re-running a run that has not finished is refused, naming its status.
    detail = problem(http.post(f"{first_url}/rerun"), 409)["detail"]
    assert "PENDING" in detail
    assert len(http.get(first_url).json()["runs"]) == 1

    # Nothing to download yet.
    assert "yet" in problem(http.get(f"{first_url}/download"), 404)["detail"]
    assert "PENDING" in problem(http.get(f"{first_url}/download?run=1"), 404)["detail"]

    # A second trigger waits behind the first: one active run per configuration.
    second = trigger(http, cfg)
    assert second["id"] != first["id"]
    assert second["latestStatus"] == "ON_HOLD"
    second_url = f"{base}/executions/{second['id']}"
    assert "ON_HOLD" in problem(http.post(f"{second_url}/rerun"), 409)["detail"]

    # Both are listed, newest first or not, one page at a time.
    listing = http.get(f"{base}/executions", params={"limit": 1}).json()
    assert (listing["totalSize"], listing["totalPages"], len(listing["data"])) == (2, 2, 1)
    page2 = http.get(f"{base}/executions", params={"limit": 1, "page": 1}).json()
    assert {listing["data"][0]["id"], page2["data"][0]["id"]} == {first["id"], second["id"]}
    assert all(
        i["latestStartedAt"] is None and i["totalRuns"] == 1
        for i in listing["data"] + page2["data"]
    )
    beyond = http.get(f"{base}/executions", params={"limit": 1, "page": 7}).json()
    assert beyond["data"] == [] and beyond["totalSize"] == 2

    # A configuration with unfinished runs cannot be deleted.
    assert "unfinished" in problem(http.delete(base), 409)["detail"]

    # Cancelling the PENDING run releases the one on hold.
    cancelled = http.post(f"{first_url}/cancel")
    assert cancelled.status_code == 202
    assert cancelled.json()["latestStatus"] == "CANCELLED"
    assert http.get(second_url).json()["latestStatus"] == "PENDING"
    assert "CANCELLED" in problem(http.post(f"{first_url}/cancel"), 409)["detail"]
    assert "CANCELLED" in problem(http.post(f"{first_url}/rerun"), 409)["detail"]
    problem(http.get(f"{first_url}/download"), 404)

    assert http.post(f"{second_url}/cancel").json()["latestStatus"] == "CANCELLED"
    assert http.delete(base).status_code == 204
    problem(http.get(base), 404)
    problem(http.get(first_url), 404)
    problem(http.get(f"{base}/executions"), 404)


def test_a_configuration_changed_after_a_trigger_does_not_change_the_queued_run(
    http: httpx.Client, template_id: str
) -> None:
    cfg = configuration(http, template_id, "frozen", fields=["id", "region"])
    execution = trigger(http, cfg)
    version = http.get(f"{CONFIGS}/{cfg}").json()["version"]
    patched = http.patch(f"{CONFIGS}/{cfg}", json={"name": "renamed", "format": "jsonl"})
    assert patched.status_code == 200 and patched.json()["version"] == version + 1
    details = http.get(f"{CONFIGS}/{cfg}/executions/{execution['id']}").json()
    assert details["extractConfigurationName"] == "frozen"
    assert http.get(f"{CONFIGS}/{cfg}/executions").json()["data"][0]["id"] == execution["id"]
    http.post(f"{CONFIGS}/{cfg}/executions/{execution['id']}/cancel")


def test_a_run_triggered_before_the_worker_starts_is_picked_up(
    tmp_path: Path, template_id: str, server: Server
) -> None:
    """The queue is durable: a run accepted by a server without a worker completes once a
    server with a worker starts on the same data directory."""
    with api(server) as http:
        cfg = configuration(http, template_id, "durable")
        eid = trigger(http, cfg)["id"]
    env = {"EGRESS_DATA_DIR": str(server.data_dir)}
    with running_server(tmp_path, env=env) as worker, api(worker, server.token) as http:
        details = wait_for_status(http, cfg, eid, {"COMPLETED", "FAILED"})
        assert details["latestStatus"] == "COMPLETED", details
        assert details["latestRecordCount"] == 10
        assert http.get(details["runs"][0]["file"]["downloadUrl"]).status_code == 200
