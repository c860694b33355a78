"""``csvNullValues`` on a custom template over CSV files (issue 13 item 2): it overrides the
connection's list, both ways, in the inferred types and in the rows read; it is validated
(a list of bounded strings, CSV files only) and shown back."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import wait_for_status
from tests.e2e.helpers import API, CONFIGS, DONE, configuration, problem, trigger
from tests.support.http import sqlite_connection

SCORES = "id,score,code\n1,10,NA\n2,NA,NAM\n3,,x\n"


def _connect(http: httpx.Client, root: Path, name: str, nulls: list[str]) -> str:
    settings = {"url": root.as_uri(), "csvNullValues": nulls}
    r = http.post(f"{API}/connections", json={"name": name, "type": "files", "settings": settings})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _create(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = http.post(f"{API}/templates", json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    assert http.get(f"{API}/templates/{created['id']}").json() == created  # shown back
    return created


def _rows(http: httpx.Client, template_id: str, name: str) -> list[str]:
    cfg = configuration(http, template_id, name)
    eid = trigger(http, cfg)["id"]
    assert wait_for_status(http, cfg, eid, DONE)["latestStatus"] == "COMPLETED"
    return http.get(f"{CONFIGS}/{cfg}/executions/{eid}/download").text.splitlines()


def test_a_template_s_null_spellings_override_the_connection_s(
    http: httpx.Client, tmp_path: Path
) -> None:
    root = tmp_path / "scores"
    root.mkdir()
    (root / "scores.csv").write_text(SCORES)

    # The connection reads only an empty field as NULL; the template adds "NA".
    plain = _connect(http, root, "scores_plain", [])
    tpl = _create(
        http,
        {"connectionId": plain, "name": "na", "table": "scores.csv", "csvNullValues": ["NA"]},
    )
    assert tpl["csvNullValues"] == ["NA"]
    assert [(f["name"], f["type"]) for f in tpl["fields"]] == [
        ("id", "int64"),
        ("score", "int64"),  # "NA" is NULL here, so the column is numbers
        ("code", "string"),
    ]
    assert _rows(http, tpl["id"], "na") == ['"id","score","code"', "1,10,", '2,,"NAM"', '3,,"x"']

    # The connection reads "NA" as NULL; the template's empty list keeps it text.
    marked = _connect(http, root, "scores_marked", ["NA"])
    tpl = _create(
        http, {"connectionId": marked, "name": "text", "table": "scores.csv", "csvNullValues": []}
    )
    assert tpl["csvNullValues"] == []
    assert [(f["name"], f["type"]) for f in tpl["fields"]] == [
        ("id", "int64"),
        ("score", "string"),
        ("code", "string"),
    ]
    assert _rows(http, tpl["id"], "text") == [
        '"id","score","code"',
        '1,"10","NA"',
        '2,"NA","NAM"',
        '3,,"x"',
    ]
    # Without a list of its own, a template reads with its connection's.
    tpl = _create(http, {"connectionId": marked, "name": "inherits", "table": "scores.csv"})
    assert tpl["csvNullValues"] is None
    assert _rows(http, tpl["id"], "inherits")[1:] == ["1,10,", '2,,"NAM"', '3,,"x"']


def test_template_null_spellings_are_validated(http: httpx.Client, tmp_path: Path) -> None:
    root = tmp_path / "landing"
    root.mkdir()
    (root / "scores.csv").write_text(SCORES)
    (root / "events.jsonl").write_text('{"id": 1}\n')
    conn = _connect(http, root, "landing_nulls", [])
    body = {"connectionId": conn, "name": "x", "table": "scores.csv"}
    for nulls, field, message in [
        ("NA", "csvNullValues", "list"),
        ([1], "csvNullValues.0", "string"),
        (["NA"] * 101, "csvNullValues", "at most 100"),
        (["x" * 101], "csvNullValues.0", "at most 100"),
    ]:
        r = http.post(f"{API}/templates", json={**body, "csvNullValues": nulls})
        assert message in str(problem(r, 422, field)), r.text
    r = http.post(f"{API}/templates", json={**body, "table": "events.jsonl", "csvNullValues": []})
    assert "only CSV files" in problem(r, 422, "csvNullValues")["detail"]

    db = tmp_path / "landing" / "shop.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE t (id INTEGER)")
    sql = sqlite_connection(http, db, "shop_nulls")
    r = http.post(f"{API}/templates", json={**body, "connectionId": sql, "table": "main.t"})
    assert r.status_code == 201, r.text
    r = http.post(
        f"{API}/templates",
        json={**body, "connectionId": sql, "table": "main.t", "name": "y", "csvNullValues": []},
    )
    assert "only CSV files" in problem(r, 422, "csvNullValues")["detail"]
    query = {"connectionId": sql, "name": "q", "query": "SELECT id FROM t"}
    r = http.post(f"{API}/templates", json={**query, "csvNullValues": ["NA"]})
    assert "only CSV files" in problem(r, 422, "csvNullValues")["detail"]
