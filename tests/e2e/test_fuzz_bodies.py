"""Random request bodies against a real server never get a 5xx: every answer is a clear
success or a problem+json 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egress.demo import create_orders_db
from tests.conftest import Server, start_server, stop_server
from tests.support.http import sqlite_template, submitted_configuration

API = "/api/v1"
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
TRIGGER_KEYS = ["dateFrom", "dateTo", "extractOnlyNew", "whereClause", "rows", "selectAll"]
CONFIG_KEYS = [
    "name",
    "templateId",
    "fields",
    "format",
    "compression",
    "destination",
    "fileNamePattern",
    "startDate",
    "endDate",
    "splitBy",
    "filter",
    "extractOnlyNew",
    "dateFrom",
    "dateTo",
]
ORDER_FIELDS = ["id", "region", "amount", "ordered_at", "nope"]


def bodies(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    plausible = st.one_of(
        json_values,
        st.sampled_from(["2026-01-01", "2026-13-45", "region = 'EU'", "id > 1; --", "csv"]),
        st.lists(st.sampled_from(ORDER_FIELDS), max_size=3),
        st.lists(st.fixed_dictionaries({"id": json_values}), max_size=3),
    )
    return st.dictionaries(st.sampled_from(keys), plausible, max_size=len(keys))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("fuzz"), args=("--no-worker",))
    yield s
    stop_server(s)
    assert "Traceback" not in s.log()


@pytest.fixture(scope="module")
def target(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    db: Path = create_orders_db(tmp_path_factory.mktemp("db") / "shop.db", rows=20)
    with server.client() as http:
        tpl = sqlite_template(http, db, "shop", "orders")
        return {"template": tpl, "config": submitted_configuration(http, tpl, "fuzz")}


def _check(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"] == "application/problem+json"


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies(TRIGGER_KEYS))
def test_trigger_bodies(server: Server, target: dict[str, str], body: dict[str, Any]) -> None:
    with server.client() as http:
        _check(
            http.post(f"{API}/extraction-configurations/{target['config']}/executions", json=body)
        )


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies(CONFIG_KEYS), use_template=st.booleans())
def test_configuration_bodies(
    server: Server, target: dict[str, str], body: dict[str, Any], use_template: bool
) -> None:
    if use_template:
        body["templateId"] = target["template"]
    with server.client() as http:
        _check(http.post(f"{API}/extraction-configurations", json=body))
        _check(http.patch(f"{API}/extraction-configurations/{target['config']}", json=body))
