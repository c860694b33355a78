"""Seed 002 (a workspace extraction-run API), walked line by line against a real server.

Each test names the seed lines it checks. The seed's one path: ``POST /noCo/api/v2/
workspaces/{workspaceId}/extraction/{extractionId}/{elementType}/{elementId}/run`` with the
query parameter ``extractOnlyNew`` and the optional body ``{rows, whereClause, selectAll}``;
the run is polled as a request at ``/noCo/api/v1/requestLog/status/{requestId}`` (the request
store bulk export shares)."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.e2e.helpers import PROBLEM, anonymous, api, problem, workspace_id
from tests.support.http import sqlite_connection, submitted_configuration, template
from tests.support.identity import other_workspace
from tests.support.oauth import PASSWORD, REDIRECT, authorization_code, exchange, pkce

API = "/api/v1"
NOCO = "/noCo/api/v2/workspaces"
STATUS = "/noCo/api/v1/requestLog/status"
REQUEST_ID = re.compile(r"^extraction-[0-9a-f-]{36}$")
# The body of the seed's curl example, byte for byte.
SEED_EXAMPLE_BODY = b"""{
"selectAll": false,
"rows": [
{
"id": "row1",
"name": "Sample Data"
}
]
}"""
ELEMENT_ID = re.compile(r"^[A-Za-z0-9_-]{16}$")  # one URL-safe path segment


def _source(db: Path) -> Path:
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT, age INTEGER, seq INT)")
        conn.executemany(
            "INSERT INTO people VALUES (?, ?, ?, ?)",
            [("a", "Ann", 30, 1), ("b", "Bob", 40, 2), ("c", "Cy", 50, 3)],
        )
    conn.close()
    return db


def catalog(http: httpx.Client, server: Server, db: Path, name: str) -> dict[str, Any]:
    """A connection to ``db``, its templates of main.people and its element ids."""
    conn = sqlite_connection(http, db, name)
    discovered = template(http, conn, "main.people")
    custom = http.post(
        f"{API}/templates",
        json={"connectionId": conn, "name": f"{name} by seq", "table": "main.people"}
        | {"cursorField": "seq"},
    )
    assert custom.status_code == 201, custom.text
    tree = http.get(f"{API}/connections/{conn}/elements").json()["data"]
    folder = tree[0]
    file = next(f for f in folder["children"] if f["name"] == "people")
    return {
        "workspace": workspace_id(server),
        "connection": conn,
        "template": discovered["id"],
        "incremental": custom.json()["id"],
        "folder": folder["id"],
        "file": file["id"],
        "columns": {c["name"]: c["id"] for c in file["children"]},
        "tree": tree,
    }


@pytest.fixture(scope="module")
def setup(
    http: httpx.Client, server: Server, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    return catalog(http, server, _source(tmp_path_factory.mktemp("seed002") / "crm.db"), "crm")


def run_url(s: dict[str, Any], cfg: str, kind: str = "FILE", element: str | None = None) -> str:
    element = element or s["file"] if kind == "FILE" else element or s["folder"]
    return f"{NOCO}/{s['workspace']}/extraction/{cfg}/{kind}/{element}/run"


def poll(http: httpx.Client, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        r = http.get(f"{STATUS}/{request_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["status"] in ("Completed", "Failed"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def run(http: httpx.Client, url: str, only_new: bool | None = None, **body: Any) -> dict[str, Any]:
    params = {} if only_new is None else {"extractOnlyNew": str(only_new).lower()}
    r = http.post(url, params=params, json=body or None)
    assert r.status_code == 202, r.text
    accepted: dict[str, Any] = r.json()
    done = poll(http, accepted["requestId"])
    assert done["status"] == "Completed", done
    return {**accepted, "done": done}


def table_rows(http: httpx.Client, name: str) -> dict[str, dict[str, Any]]:
    tables = http.get(f"{API}/data-tables").json()["data"]
    table = next(t for t in tables if t["name"] == name)
    rows = http.get(f"{API}/data-tables/{table['id']}/rows", params={"limit": 100}).json()
    return {row["id"]: row for row in rows["data"]}


def loading(http: httpx.Client, s: dict[str, Any], name: str, **extra: Any) -> str:
    """A submitted configuration upserting main.people into the data table ``name``."""
    destination = {"type": "dataTable", "dataTable": name, "mode": "upsert"}
    return submitted_configuration(http, s["template"], name, destination=destination, **extra)


def test_element_ids_are_opaque_url_safe_and_stable(
    http: httpx.Client, setup: dict[str, Any]
) -> None:
    """Line 14 (``elementId | string | Element identifier``) and line 13 (``COLUMN / FILE /
    FOLDER``): every element of the catalog has an id that travels in one path segment, kept
    from one listing to the next, with the readable name as its ``path``."""
    file = next(f for f in setup["tree"][0]["children"] if f["name"] == "people")
    assert (file["elementType"], file["path"]) == ("FILE", "main/people")
    assert setup["tree"][0]["elementType"] == "FOLDER"
    assert {c["elementType"] for c in file["children"]} == {"COLUMN"}
    ids = [setup["folder"], setup["file"], *setup["columns"].values()]
    assert all(ELEMENT_ID.match(i) for i in ids) and len(set(ids)) == len(ids)
    again = http.get(f"{API}/connections/{setup['connection']}/elements").json()["data"]
    assert again == setup["tree"]


def test_the_seed_curl_example_verbatim(
    server: Server, http: httpx.Client, setup: dict[str, Any]
) -> None:
    """Lines 36-48: the seed's curl example with host and token substituted. Its row matches
    no record (no id ``row1``): a completed request with 0 records, not an error."""
    cfg = submitted_configuration(http, setup["incremental"], "curl-example")
    url = run_url(setup, cfg)
    r = httpx.post(
        f"{server.base_url}{url}?extractOnlyNew=true",
        headers={
            "Authorization": f"Bearer {server.token}",
            "Content-Type": "application/json",
        },
        content=SEED_EXAMPLE_BODY,
    )
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert set(accepted) == {"requestId", "executionId", "status"}
    assert accepted["status"] == "Pending" and REQUEST_ID.match(accepted["requestId"])
    done = poll(http, accepted["requestId"])
    assert done["status"] == "Completed" and done["result"]["total"] == 0, done
    assert done["executionId"] == accepted["executionId"]
    native = http.get(f"{API}/extraction-configurations/{cfg}/executions/{done['executionId']}")
    assert native.json()["options"]["extractOnlyNew"] is True
    assert native.json()["latestStatus"] == "COMPLETED_NO_DATA"


def test_path_parameters(http: httpx.Client, setup: dict[str, Any], server: Server) -> None:
    """Lines 9-14: workspaceId (the caller's, else 404), extractionId (a configuration of the
    workspace, else 404), elementType (COLUMN / FILE / FOLDER, else 422 naming it), elementId
    (an element the configuration extracts, else 404)."""
    cfg = submitted_configuration(http, setup["template"], "paths")
    other_ws, other_token = other_workspace(server, "seed002-other", "editor")
    wrong_ws = run_url(setup, cfg).replace(setup["workspace"], other_ws)
    assert problem(http.post(wrong_ws), 404)
    with api(server, other_token) as other:
        mine = run_url(setup, cfg).replace(setup["workspace"], other_ws)
        assert problem(other.post(mine), 404)  # its own workspace, not its configuration
    assert problem(http.post(run_url(setup, "no-such-config")), 404)
    # A UUID is read in either case (RFC 9562): the upper-case id is the same workspace.
    upper = run_url(setup, cfg).replace(setup["workspace"], setup["workspace"].upper())
    assert setup["workspace"] != setup["workspace"].upper()
    assert http.post(upper).status_code == 202
    bad_type = run_url(setup, cfg).replace("/FILE/", "/TABLE/")
    assert problem(http.post(bad_type), 422, "path.elementType")
    assert problem(http.post(run_url(setup, cfg, "FILE", setup["folder"])), 404)
    # An element of another table the configuration does not read.
    assert problem(http.post(run_url(setup, cfg, "FILE", "AAAAAAAAAAAAAAAA")), 404)


def test_query_parameter_extract_only_new(http: httpx.Client, setup: dict[str, Any]) -> None:
    """Lines 15-21: extractOnlyNew, a boolean query parameter, default false; true → only new
    records (the configuration's watermark) — a template without a cursor cannot."""
    cfg = submitted_configuration(http, setup["incremental"], "only-new", incrementalLag=0)
    first = run(http, run_url(setup, cfg), True)
    assert first["done"]["result"]["total"] == 3
    again = run(http, run_url(setup, cfg), True)
    assert again["done"]["result"]["total"] == 0  # nothing new since
    everything = run(http, run_url(setup, cfg))  # default false: every record
    assert everything["done"]["result"]["total"] == 3
    keyless = submitted_configuration(http, setup["template"], "no-cursor")
    r = http.post(run_url(setup, keyless), params={"extractOnlyNew": "true"})
    assert [e["field"] for e in problem(r, 422)["errors"]] == ["query.extractOnlyNew"]
    r = http.post(run_url(setup, cfg), params={"extractOnlyNew": "maybe"})
    assert problem(r, 422, "query.extractOnlyNew")


def test_extract_only_new_false_upserts(http: httpx.Client, server: Server, tmp_path: Path) -> None:
    """Line 21 and lines 52-53: false → the selected records are upserted into the
    configuration's data table: existing ones updated, new ones inserted, the rest kept."""
    db = _source(tmp_path / "changing.db")
    s = catalog(http, server, db, "changing")
    cfg = loading(http, s, "people_upserts")
    run(http, run_url(s, cfg), False)
    names = {k: r["name"] for k, r in table_rows(http, "people_upserts").items()}
    assert names == {"a": "Ann", "b": "Bob", "c": "Cy"}
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE people SET name = 'Anna' WHERE id = 'a'")
        conn.execute("UPDATE people SET name = 'Bobby' WHERE id = 'b'")
        conn.execute("INSERT INTO people VALUES ('d', 'Di', 20, 4)")
    conn.close()
    picked = run(http, run_url(s, cfg), False, selectAll=False, rows=[{"id": "a"}])
    assert picked["done"]["result"]["total"] == 1
    names = {k: r["name"] for k, r in table_rows(http, "people_upserts").items()}
    assert names == {"a": "Anna", "b": "Bob", "c": "Cy"}  # only the selected row
    run(http, run_url(s, cfg), False, selectAll=True)
    names = {k: r["name"] for k, r in table_rows(http, "people_upserts").items()}
    assert names == {"a": "Anna", "b": "Bobby", "c": "Cy", "d": "Di"}


def test_body_fields(http: httpx.Client, setup: dict[str, Any]) -> None:
    """Lines 27-36 and 54-57: rows (specific rows), whereClause (a filter), selectAll (every
    matching record; rows must then be omitted or empty); selectAll false needs rows, each carrying
    the template's primary key."""
    cfg = submitted_configuration(http, setup["template"], "body", format="jsonl")
    url = run_url(setup, cfg)
    assert run(http, url, whereClause="age >= 40", selectAll=True)["done"]["result"]["total"] == 2
    assert (
        run(http, url, rows=[{"id": "c"}, {"id": "zz"}], selectAll=False)["done"]["result"]["total"]
        == 1
    )
    assert run(http, url)["done"]["result"]["total"] == 3  # no body: every record
    r = http.post(url, json={"selectAll": True, "rows": [{"id": "a"}]})
    assert [e["field"] for e in problem(r, 422)["errors"]] == ["rows"]
    r = http.post(url, json={"selectAll": False})
    assert [e["field"] for e in problem(r, 422)["errors"]] == ["rows"]
    r = http.post(url, json={"selectAll": False, "rows": [{"id": "a"}, {"name": "Bob"}]})
    assert [e["field"] for e in problem(r, 422)["errors"]] == ["rows.1"]
    r = http.post(url, json={"whereClause": "nope = 1"})
    assert [e["field"] for e in problem(r, 422)["errors"]] == ["whereClause"]
    r = http.post(url, json={"selectAll": "yes please"})
    assert "selectAll" in [e["field"] for e in problem(r, 422)["errors"]]
    r = http.post(url, json={"extra": 1})
    assert "extra" in [e["field"] for e in problem(r, 422)["errors"]]


def test_the_seed_request_body_example_with_empty_rows(
    http: httpx.Client, setup: dict[str, Any]
) -> None:
    """The seed's request body example sends ``"rows": []`` beside ``"selectAll": true``: every
    record matching whereClause (before 2026-12-04 it was 422 ``rows: must be omitted when
    selectAll is true``). A non-empty rows list with selectAll true stays 422, and a key value
    of another JSON type than the key column's is 422 naming it."""
    cfg = submitted_configuration(http, setup["template"], "empty-rows", format="jsonl")
    url = run_url(setup, cfg)
    done = run(http, url, rows=[], whereClause="age >= 40", selectAll=True)["done"]
    assert done["result"]["total"] == 2
    assert run(http, url, rows=[], selectAll=True)["done"]["result"]["total"] == 3
    r = http.post(url, json={"selectAll": True, "rows": [{"id": "a"}]})
    assert [e["field"] for e in problem(r, 422)["errors"]] == ["rows"]
    r = http.post(url, json={"selectAll": False, "rows": [{"id": "a"}, {"id": 1}]})
    errors = problem(r, 422)["errors"]
    assert [(e["field"], e["message"]) for e in errors] == [
        ("rows.1.id", "1 is not a string (field 'id' is string): write it as text, in quotes")
    ]


def test_content_type_is_optional(
    server: Server, http: httpx.Client, setup: dict[str, Any]
) -> None:
    """Lines 25-26 (``Content-Type: application/json | Optional``): the same JSON body with no
    Content-Type, or the form type ``curl -d`` sends without ``-H``, is read as JSON."""
    cfg = submitted_configuration(http, setup["template"], "content-type")
    body = json.dumps({"selectAll": False, "rows": [{"id": "b"}]}).encode()
    for headers in ({}, {"Content-Type": "application/x-www-form-urlencoded"}):
        r = httpx.post(
            f"{server.base_url}{run_url(setup, cfg)}",
            headers={"Authorization": f"Bearer {server.token}", **headers},
            content=body,
        )
        assert r.status_code == 202, r.text
        assert poll(http, r.json()["requestId"])["result"]["total"] == 1
    r = http.post(run_url(setup, cfg), content=b"{not json", headers={"Content-Type": ""})
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM


def test_element_types(http: httpx.Client, setup: dict[str, Any]) -> None:
    """Line 13: FOLDER (the template's schema) and FILE (its table) run every field the
    configuration reads; COLUMN one of its columns: that column and the primary key."""
    cfg = submitted_configuration(http, setup["template"], "elements", format="jsonl")
    for kind, element in (("FOLDER", setup["folder"]), ("FILE", setup["file"])):
        done = run(http, run_url(setup, cfg, kind, element))["done"]
        lines = httpx.get(done["result"]["fileUrl"]).text.splitlines()
        assert set(json.loads(lines[0])) == {"id", "name", "age", "seq"}
    done = run(http, run_url(setup, cfg, "COLUMN", setup["columns"]["age"]))["done"]
    got = [json.loads(line) for line in httpx.get(done["result"]["fileUrl"]).text.splitlines()]
    assert sorted(got, key=lambda r: r["id"]) == [
        {"id": "a", "age": 30},
        {"id": "b", "age": 40},
        {"id": "c", "age": 50},
    ]
    narrow = submitted_configuration(
        http, setup["template"], "narrow", format="jsonl", fields=["id", "name"]
    )
    r = http.post(run_url(setup, narrow, "COLUMN", setup["columns"]["age"]))
    assert problem(r, 404)  # a column the configuration does not extract


def test_an_incremental_column_run_keeps_the_watermark(
    http: httpx.Client, server: Server, tmp_path: Path
) -> None:
    """A COLUMN run takes one column of the new records: with extractOnlyNew it keeps the
    watermark, so the next FILE run still takes those records whole. Before 2026-12-04 it
    moved the watermark: the FILE run took nothing, and the data table kept the new record
    with only that column."""
    db = _source(tmp_path / "growing.db")
    s = catalog(http, server, db, "growing")
    destination = {"type": "dataTable", "dataTable": "people_feed", "mode": "upsert"}
    cfg = submitted_configuration(http, s["incremental"], "feed", destination=destination)
    assert run(http, run_url(s, cfg), True)["done"]["result"]["total"] == 3
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO people VALUES ('d', 'Di', 20, 4)")
    conn.close()
    column = run(http, run_url(s, cfg, "COLUMN", s["columns"]["age"]), True)
    assert column["done"]["result"]["total"] == 1
    details = http.get(f"{API}/extraction-configurations/{cfg}/executions/{column['executionId']}")
    assert details.json()["options"]["narrowedBy"] == ["elementId"]
    assert http.get(f"{API}/extraction-configurations/{cfg}").json()["watermark"] == 3
    assert run(http, run_url(s, cfg), True)["done"]["result"]["total"] == 1
    rows = table_rows(http, "people_feed")
    assert {k: (r["name"], r["age"]) for k, r in rows.items()} == {
        "a": ("Ann", 30),
        "b": ("Bob", 40),
        "c": ("Cy", 50),
        "d": ("Di", 20),
    }


def test_the_request_list_links_an_extractions_file(
    http: httpx.Client, setup: dict[str, Any]
) -> None:
    """``GET /api/v1/requests`` shows an extraction request as its own GET does: with its
    ``fileUrl`` (null in the list before 2026-12-04) and ``createdAt`` in UTC with ``Z``."""
    cfg = submitted_configuration(http, setup["template"], "listed", format="jsonl")
    accepted = run(http, run_url(setup, cfg))
    one = http.get(f"{API}/request/{accepted['requestId']}").json()
    listed = next(
        r
        for r in http.get(f"{API}/requests").json()["data"]
        if r["requestId"] == accepted["requestId"]
    )
    assert listed["result"] == one["result"] and one["result"]["fileUrl"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", listed["createdAt"])
    assert len(httpx.get(listed["result"]["fileUrl"]).text.splitlines()) == 3


def test_request_resource_is_shared_with_bulk_export(
    http: httpx.Client, setup: dict[str, Any]
) -> None:
    """The run's request reads the same through seed 003's ``/api/v1/request/{requestId}``,
    and a bulk export's request through ``requestLog/status``: one request store."""
    cfg = submitted_configuration(http, setup["template"], "shared")
    done = run(http, run_url(setup, cfg))
    via_003 = http.get(f"{API}/request/{done['requestId']}").json()
    assert via_003 == {k: v for k, v in done["done"].items() if k != "executionId"}
    export = http.post(f"{API}/idm/{setup['workspace']}/t-{setup['template']}/export").json()
    body = poll(http, export["requestId"])
    assert body["requestId"] == export["requestId"] and "executionId" not in body
    assert problem(http.get(f"{STATUS}/extraction-unknown"), 404)


def _extraction(s: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The vendor's configuration object over main.people."""
    return {
        "title": "People",
        "elementType": "FILE",
        "elementId": s["file"],
        "primaryKeyColumnId": [s["columns"]["id"]],
        "outputConfiguration": {"createNewWorkbook": True, "title": "people_noco"},
        "storeExtractedData": True,
        "scheduleType": "CRON",
        "schedule": {"cronExpression": "0 2 * * *"},
        "columnConfiguration": [
            {"name": "id", "description": "the key", "uiMetadata": {"title": "Id"}}
            | {"uiDataType": "TEXT"},
            {"name": "name"},
        ],
        **changes,
    }


def test_configuration_routes(http: httpx.Client, setup: dict[str, Any]) -> None:
    """The configuration routes of the seed's API family: create, attached to an element,
    replace (the full object), delete — each a native configuration underneath."""
    base = f"{NOCO}/{setup['workspace']}/extraction"
    made = http.post(base, json=_extraction(setup))
    assert made.status_code == 201, made.text
    cfg = made.json()
    assert cfg["inputTableId"] == setup["template"]  # the table's own key: its template
    assert cfg["columnConfiguration"] == _extraction(setup)["columnConfiguration"]
    assert (cfg["scheduleType"], cfg["schedule"]["cronExpression"]) == ("CRON", "0 2 * * *")
    assert cfg["primaryKeyColumnId"] == [setup["columns"]["id"]]
    native = http.get(f"{API}/extraction-configurations/{cfg['id']}").json()
    assert native["name"] == "People" and native["fields"] == ["id", "name"]
    assert native["status"] == "SUBMITTED"
    assert native["destination"] == {"type": "dataTable", "dataTable": "people_noco"} | {
        "mode": "upsert"
    }
    assert [s["cron"] for s in native["schedules"]] == ["0 2 * * *"]

    run(http, run_url(setup, cfg["id"]))
    assert {
        k: set(r) >= {"id", "name"} and "age" not in r
        for k, r in table_rows(http, "people_noco").items()
    } == {"a": True, "b": True, "c": True}
    table_id = http.get(f"{base}/FILE/{setup['file']}").json()
    assert [c["outputConfiguration"]["tableId"] for c in table_id if c["id"] == cfg["id"]] != [None]

    def attached(kind: str, element: str) -> bool:
        r = http.get(f"{base}/{kind}/{element}")
        assert r.status_code == 200, r.text
        return cfg["id"] in [c["id"] for c in r.json()]

    assert attached("FILE", setup["file"]) and attached("FOLDER", setup["folder"])
    assert attached("COLUMN", setup["columns"]["name"])
    assert not attached("COLUMN", setup["columns"]["age"])  # not one of its columns

    full = _extraction(setup, id=cfg["id"], scheduleType="MANUAL", schedule=None)
    full["columnConfiguration"] = [{"name": "id"}, {"name": "age"}]
    replaced = http.put(f"{base}/{cfg['id']}", json=full)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["scheduleType"] == "MANUAL" and replaced.json()["schedule"] is None
    assert attached("COLUMN", setup["columns"]["age"])
    native = http.get(f"{API}/extraction-configurations/{cfg['id']}").json()
    assert native["fields"] == ["id", "age"] and native["schedules"] == []
    r = http.put(f"{base}/{cfg['id']}", json={**full, "id": "another"})
    assert [e["field"] for e in problem(r, 422)["errors"]] == ["id"]

    assert http.delete(f"{base}/{cfg['id']}").status_code == 204
    assert problem(http.get(f"{API}/extraction-configurations/{cfg['id']}"), 404)
    assert problem(http.delete(f"{base}/{cfg['id']}"), 404)


def test_configuration_object_mapping(http: httpx.Client, setup: dict[str, Any]) -> None:
    """outputConfiguration (new or existing data table), storeExtractedData, a key other than
    the table's (primaryKeyColumnId), and what Egress cannot do: a column the source does not
    hold, the ADVANCED mode — each a 422 saying so, naming the field as sent."""
    base = f"{NOCO}/{setup['workspace']}/extraction"
    keyed = http.post(
        base,
        json=_extraction(
            setup,
            title="by name",
            primaryKeyColumnId=[setup["columns"]["name"]],
            outputConfiguration={"createNewWorkbook": True, "title": "people_by_name"},
        ),
    )
    assert keyed.status_code == 201, keyed.text
    custom = http.get(f"{API}/templates/{keyed.json()['inputTableId']}").json()
    assert custom["primaryKey"] == ["name"] and custom["id"] != setup["template"]

    run(http, run_url(setup, loading(http, setup, "people_existing")))
    tables = http.get(f"{API}/data-tables").json()["data"]
    existing = next(t for t in tables if t["name"] == "people_existing")
    into = http.post(
        base,
        json=_extraction(
            setup,
            title="into existing",
            outputConfiguration={"createNewWorkbook": False, "tableId": existing["id"]},
            columnConfiguration=None,
        ),
    )
    assert into.status_code == 201, into.text
    native = http.get(f"{API}/extraction-configurations/{into.json()['id']}").json()
    assert native["destination"]["dataTable"] == "people_existing"

    to_file = http.post(base, json=_extraction(setup, title="a file", storeExtractedData=False))
    assert to_file.status_code == 201, to_file.text
    assert to_file.json()["storeExtractedData"] is False
    native = http.get(f"{API}/extraction-configurations/{to_file.json()['id']}").json()
    assert native["destination"]["type"] == "storage"

    def refused(field: str, **changes: Any) -> str:
        body = problem(http.post(base, json=_extraction(setup, **changes)), 422)
        assert [e["field"] for e in body["errors"]] == [field], body
        return str(body["detail"])

    derived = [{"name": "id"}, {"name": "sentiment", "description": "how they feel"}]
    assert "extracts what the source holds" in refused(
        "columnConfiguration.1.name", columnConfiguration=derived
    )
    assert "extracts what the source holds" in refused("extractionMode", extractionMode="ADVANCED")
    refused("schedule.cronExpression", schedule=None)
    refused("elementType", elementType="FOLDER", elementId=setup["folder"])
    refused("elementId", elementId="AAAAAAAAAAAAAAAA")
    refused("primaryKeyColumnId.0", primaryKeyColumnId=["AAAAAAAAAAAAAAAA"])
    refused("outputConfiguration.tableId", outputConfiguration={"createNewWorkbook": False})
    refused("columnConfiguration", columnConfiguration=[{"name": "name"}])  # key not read
    other = f"{NOCO}/not-my-workspace/extraction"
    assert problem(http.post(other, json=_extraction(setup)), 404)
    assert problem(http.get(f"{other}/FILE/{setup['file']}"), 404)


def test_oauth_authorization_code_token(
    server: Server, http: httpx.Client, setup: dict[str, Any]
) -> None:
    """Lines 22-24 (``Authorization: Bearer <token>``, required) and 60 (OAuth 2.0 with the
    authorization code grant): a user's token from that flow starts a run; none is 401."""
    user = {"email": "ada@example.test", "role": "editor", "password": PASSWORD}
    assert http.post(f"{API}/users", json=user).status_code == 201
    client = http.post(
        f"{API}/clients",
        json={"name": "noco-app", "role": "editor", "public": True, "redirectUris": [REDIRECT]},
    ).json()
    app = {"client_id": client["clientId"]}
    verifier, challenge = pkce()
    with anonymous(server) as web:
        web.follow_redirects = False
        code = authorization_code(web, app, challenge)
        token = exchange(web, app, code, verifier).json()["access_token"]
        url = run_url(setup, submitted_configuration(http, setup["template"], "oauth"))
        r = web.post(url, headers={"Authorization": f"Bearer {token}"}, json={"selectAll": True})
        assert r.status_code == 202, r.text
        with api(server, token) as ada:  # her request: only she polls it
            assert poll(ada, r.json()["requestId"])["status"] == "Completed"
        assert problem(web.post(url, json={"selectAll": True}), 401)
