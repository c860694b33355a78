"""Data tables over HTTP: list, details, keyset-paged rows, and no download."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, start_server, stop_server, wait_for_status

API = "/api/v1"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = start_server(tmp_path)
    yield s
    stop_server(s)
    assert "Traceback" not in s.log()


def test_data_table_api(server: Server, tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE items (sku TEXT PRIMARY KEY, price DECIMAL(8,2))")
        conn.executemany(
            "INSERT INTO items VALUES (?, ?)", [(f"sku-{i:03d}", f"{i}.25") for i in range(25)]
        )
    with server.client() as http:
        conn_id = http.post(
            f"{API}/connections",
            json={"name": "src", "type": "sqlite", "settings": {"path": str(db)}},
        ).json()["id"]
        tpl = http.get(f"{API}/templates", params={"connectionId": conn_id}).json()["data"][0]
        bad = http.post(
            f"{API}/extraction-configurations",
            json={
                "name": "bad",
                "templateId": tpl["id"],
                "format": "csv",
                "destination": {"type": "dataTable", "dataTable": "Bad Name"},
            },
        )
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "destination.dataTable.dataTable"
        # A file needs a format; a data table, which has no file, does not.
        no_format = http.post(
            f"{API}/extraction-configurations",
            json={"name": "file", "templateId": tpl["id"], "destination": {"type": "storage"}},
        )
        assert no_format.status_code == 422
        assert [e["field"] for e in no_format.json()["errors"]] == ["format"]
        cfg = http.post(
            f"{API}/extraction-configurations",
            json={
                "name": "to_table",
                "templateId": tpl["id"],
                "destination": {"type": "dataTable", "dataTable": "prices", "mode": "upsert"},
            },
        )
        assert cfg.status_code == 201, cfg.text
        cid = cfg.json()["id"]
        assert cfg.json()["destination"] == {
            "type": "dataTable",
            "dataTable": "prices",
            "mode": "upsert",
        }
        http.post(f"{API}/extraction-configurations/{cid}/submit")
        eid = http.post(f"{API}/extraction-configurations/{cid}/executions").json()["id"]
        details = wait_for_status(http, cid, eid, {"COMPLETED", "FAILED"})
        assert details["latestStatus"] == "COMPLETED" and details["latestRecordCount"] == 25
        assert details["runs"][0]["file"] is None
        download = http.get(f"{API}/extraction-configurations/{cid}/executions/{eid}/download")
        assert download.status_code == 409
        assert "only extractions delivered to storage" in download.json()["detail"]

        tables = http.get(f"{API}/data-tables").json()
        assert tables["totalSize"] == 1
        table = tables["data"][0]
        assert (table["name"], table["rowCount"]) == ("prices", 25)
        detail = http.get(f"{API}/data-tables/{table['id']}").json()
        assert (detail["mode"], detail["primaryKey"], detail["templateId"]) == (
            "upsert",
            ["sku"],
            tpl["id"],
        )
        assert detail["fields"] == [
            {"name": "sku", "type": "string", "nullable": True},
            {"name": "price", "type": "decimal(8,2)", "nullable": True},
        ]
        assert detail["configurations"] == [
            {"id": cid, "name": "to_table", "mode": "upsert", "templateId": tpl["id"]}
        ]

        seen: list[dict[str, str]] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 10}
            if cursor:
                params["cursor"] = cursor
            page = http.get(f"{API}/data-tables/{table['id']}/rows", params=params).json()
            seen += page["data"]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert [r["sku"] for r in seen] == [f"sku-{i:03d}" for i in range(25)]
        assert seen[3] == {"sku": "sku-003", "price": "3.25"}
        broken = http.get(f"{API}/data-tables/{table['id']}/rows", params={"cursor": "!!"})
        assert broken.status_code == 400  # only the server makes cursors (signed)
        assert http.get(f"{API}/data-tables/nope").status_code == 404


def test_a_failed_first_load_and_a_mismatched_configuration(server: Server, tmp_path: Path) -> None:
    db = tmp_path / "codes.db"
    with sqlite3.connect(db) as conn:  # SQLite lets a TEXT primary key hold NULL
        conn.execute("CREATE TABLE codes (code TEXT PRIMARY KEY, label TEXT)")
        conn.executemany(
            "INSERT INTO codes VALUES (?, ?)", [("NA", "Namibia"), (None, "?"), ("DE", "Germany")]
        )
    with server.client() as http:
        conn_id = http.post(
            f"{API}/connections",
            json={"name": "codes", "type": "sqlite", "settings": {"path": str(db)}},
        ).json()["id"]
        tpl = http.get(f"{API}/templates", params={"connectionId": conn_id}).json()["data"][0]
        body = {
            "name": "codes_sync",
            "templateId": tpl["id"],
            "format": "csv",
            "destination": {"type": "dataTable", "dataTable": "codes", "mode": "upsert"},
        }
        cid = http.post(f"{API}/extraction-configurations", json=body).json()["id"]
        http.post(f"{API}/extraction-configurations/{cid}/submit")
        eid = http.post(f"{API}/extraction-configurations/{cid}/executions").json()["id"]
        details = wait_for_status(http, cid, eid, {"COMPLETED", "FAILED"})
        assert details["latestStatus"] == "FAILED"
        run = details["runs"][0]
        assert run["errorMessage"] == (
            "the data table's key cannot be NULL, and the source has NULL in key column "
            "'code' in 1 row; nothing was loaded"
        )
        # Three records read, none delivered: progress, not a record count.
        assert (details["latestRecordCount"], run["recordCount"]) == (0, 0)
        assert run["progress"] == {"processed": 3, "estimatedTotal": None}  # SQLite: no estimate
        listed = http.get(f"{API}/extraction-configurations/{cid}/executions").json()["data"]
        assert listed[0]["latestRunRecordCount"] == 0

        # Listed, with no rows: its first load never committed.
        (table,) = http.get(f"{API}/data-tables").json()["data"]
        assert (table["name"], table["rowCount"]) == ("codes", 0)
        rows = http.get(f"{API}/data-tables/{table['id']}/rows")
        assert rows.status_code == 200 and rows.json() == {"data": [], "nextCursor": None}

        # Another configuration may not append into it, nor may this one switch to append.
        appending = http.post(
            f"{API}/extraction-configurations",
            json={
                **body,
                "name": "codes_log",
                "destination": {**body["destination"], "mode": "append"},
            },
        )
        assert appending.status_code == 409
        assert appending.json()["detail"].startswith(
            "data table 'codes' was created to be loaded by upsert on (code) from template "
        )
        switched = http.patch(
            f"{API}/extraction-configurations/{cid}",
            json={"destination": {"type": "dataTable", "dataTable": "codes", "mode": "append"}},
        )
        assert switched.status_code == 409
        assert "this configuration would load it by append" in switched.json()["detail"]
