"""Each OpenAPI document of a real server (the native API and the seed-001 face's two) says
what the server does: Schemathesis, every check, finds nothing in a bounded run (a longer one:
bench/schemathesis_run.py), and a PATCH body takes null exactly where the document offers it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from egress.demo import create_orders_db
from tests.conftest import Server
from tests.support import schemathesis_run
from tests.support.policy import files_root


@pytest.fixture(scope="module")
def ids(http: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("schemathesis")
    db = create_orders_db(files_root(work) / f"{work.name}-shop.db", rows=50)
    return schemathesis_run.seed(http, Path(db))


def _offers_null(schema: dict[str, Any]) -> bool:
    return any(s.get("type") == "null" for s in schema.get("anyOf", [])) or (
        schema.get("type") == "null"
    )


@pytest.mark.parametrize("prefix", schemathesis_run.DOCUMENTS)
def test_a_patch_takes_null_exactly_where_the_document_offers_it(
    server: Server, http: httpx.Client, ids: dict[str, str], prefix: str
) -> None:
    doc = http.get(f"{prefix}/openapi.json").json()
    checked = 0
    for path, operations in doc["paths"].items():
        if "patch" not in operations:
            continue
        url = prefix + path.format(**ids)  # a PATCH route with a new id kind: add it to seed
        body = operations["patch"]["requestBody"]["content"]["application/json"]["schema"]
        if "$ref" in body:
            body = doc["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
        for name, schema in body["properties"].items():
            r = http.patch(url, json={name: None})
            if _offers_null(schema):
                assert r.status_code == 200, (url, name, r.text)
            else:
                assert r.status_code in (400, 422), (url, name, r.text)
                assert r.json()["errors"][0]["field"] == name, r.text
            checked += 1
    assert checked >= (25 if not prefix else 0)


def test_schemathesis_finds_nothing(
    server: Server, ids: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    failures = schemathesis_run.run(
        server.base_url,
        ids,
        server.token,
        tmp_path_factory.mktemp("schemathesis-run"),
        max_time=40,
        seed=20261201,
    )
    assert not failures, "\n\n".join(f"{f['document']}:\n{f['output']}" for f in failures)
