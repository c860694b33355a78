"""Idempotent triggers under concurrency, with SQLite and with PostgreSQL metadata."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from egress.demo import create_orders_db
from tests.conftest import Server, start_server, stop_server
from tests.support.http import sqlite_template, submitted_configuration

API = "/api/v1"


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    env = {"EGRESS_WORKER_CONCURRENCY": "1"}
    if request.param == "postgresql":
        env["EGRESS_DATABASE_URL"] = request.getfixturevalue("pg_factory")(
            "egress_idem"
        ).sqlalchemy_url
    s = start_server(tmp_path, env, args=("--no-worker",))
    yield s
    stop_server(s)
    assert "Traceback" not in s.log()


def _configuration(server: Server, db: Path) -> str:
    with server.client() as http:
        return submitted_configuration(http, sqlite_template(http, db, "shop", "orders"), "idem")


def test_concurrent_identical_triggers_create_one_execution(server: Server, tmp_path: Path) -> None:
    cfg = _configuration(server, create_orders_db(tmp_path / "shop.db", rows=10))
    url = f"{API}/extraction-configurations/{cfg}/executions"

    def trigger(_: int) -> tuple[int, str]:
        with server.client() as http:
            r = http.post(url, json={"whereClause": "id > 2"}, headers={"Idempotency-Key": "k-1"})
            return r.status_code, r.json()["id"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(trigger, range(16)))
    assert {status for status, _ in results} == {202}
    assert len({eid for _, eid in results}) == 1
    with server.client() as http:
        listing = http.get(url).json()
        assert listing["totalSize"] == 1
        assert listing["data"][0]["totalRuns"] == 1
        different = http.post(
            url, json={"whereClause": "id > 3"}, headers={"Idempotency-Key": "k-1"}
        )
        assert different.status_code == 422
        assert different.json()["errors"][0]["field"] == "header.Idempotency-Key"
        other_key = http.post(url, json={}, headers={"Idempotency-Key": "k-2"})
        assert other_key.status_code == 202 and other_key.json()["id"] != results[0][1]
        # The second execution waits behind the first: one active run per configuration.
        assert other_key.json()["latestStatus"] == "ON_HOLD"
