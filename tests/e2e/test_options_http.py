"""Every run option through the HTTP API, against a PostgreSQL and a SQLite source; the
hostile whereClause corpus answered 422 without any execution reaching the source."""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PgDatabase, Server, wait_for_status
from tests.support.http import submitted_configuration
from tests.unit.test_where_hostile import CORPUS

API = "/api/v1"
DONE = {"COMPLETED", "COMPLETED_NO_DATA", "FAILED", "CANCELLED"}
ROWS = [(i, ["EU", "NA"][i % 2], f"2026-01-{1 + i % 20:02d} 12:00:00") for i in range(1, 41)]


@pytest.fixture(params=["postgresql", "sqlite"])
def source(
    request: pytest.FixtureRequest, server: Server, tmp_path: Path
) -> tuple[str, Callable[[int], None]]:
    """A connection id of a source holding `events` (+ a `canary` table), and an inserter."""
    with server.client() as http:
        if request.param == "postgresql":
            db: PgDatabase = request.getfixturevalue("pg_db")
            with db.connect() as conn, conn.cursor() as cur:
                cur.execute("CREATE TABLE events (id int PRIMARY KEY, region text, at timestamp)")
                cur.execute("CREATE TABLE canary (id int)")
                cur.executemany("INSERT INTO events VALUES (%s, %s, %s)", ROWS)

            def insert(i: int) -> None:
                with db.connect() as conn:
                    conn.execute("INSERT INTO events VALUES (%s, 'EU', '2026-02-01')", (i,))

            settings: dict[str, Any] = {
                "host": "127.0.0.1",
                "port": 5432,
                "database": db.name,
                "user": "postgres",
            }
            body = {"name": f"pg_{db.name}", "type": "postgresql", "settings": settings}
        else:
            path = tmp_path / "events.db"
            with sqlite3.connect(path) as conn:
                conn.execute(
                    "CREATE TABLE events (id INTEGER PRIMARY KEY, region TEXT, at DATETIME)"
                )
                conn.execute("CREATE TABLE canary (id INTEGER)")
                conn.executemany("INSERT INTO events VALUES (?, ?, ?)", ROWS)

            def insert(i: int) -> None:
                with sqlite3.connect(path) as conn:
                    conn.execute("INSERT INTO events VALUES (?, 'EU', '2026-02-01 00:00:00')", (i,))

            body = {
                "name": f"sq_{tmp_path.name}",
                "type": "sqlite",
                "settings": {"path": str(path)},
            }
        conn_id = http.post(f"{API}/connections", json=body).json()["id"]
        return conn_id, insert


def _template(http: httpx.Client, conn_id: str) -> str:
    listed = http.get(f"{API}/templates", params={"connectionId": conn_id}).json()["data"]
    events = next(t for t in listed if t["name"].endswith(".events"))
    r = http.post(
        f"{API}/templates",
        json={
            "connectionId": conn_id,
            "name": f"events_{conn_id[:8]}",
            "table": events["name"],
            "cursorField": "id",
            "dateField": "at",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["primaryKey"] == ["id"]
    return str(r.json()["id"])


def _ids(http: httpx.Client, cfg: str, **options: Any) -> list[int]:
    r = http.post(f"{API}/extraction-configurations/{cfg}/executions", json=options)
    assert r.status_code == 202, r.text
    details = wait_for_status(http, cfg, r.json()["id"], DONE)
    assert details["latestStatus"] in ("COMPLETED", "COMPLETED_NO_DATA"), details
    file = details["runs"][-1]["file"]
    if file is None:
        return []
    text = http.get(file["downloadUrl"]).text
    return sorted(int(row["id"]) for row in csv.DictReader(io.StringIO(text)))


def test_options_over_http(server: Server, source: tuple[str, Callable[[int], None]]) -> None:
    conn_id, insert = source
    with server.client() as http:
        tpl = _template(http, conn_id)
        cfg = submitted_configuration(http, tpl, f"opts_{conn_id[:8]}")
        assert _ids(http, cfg) == list(range(1, 41))
        assert _ids(http, cfg, dateFrom="2026-01-03", dateTo="2026-01-04") == sorted(
            i for i, _, at in ROWS if at[:10] in ("2026-01-03", "2026-01-04")
        )
        assert _ids(http, cfg, whereClause="region = 'EU' AND id < 10") == [2, 4, 6, 8]
        assert _ids(http, cfg, selectAll=False, rows=[{"id": 7}, {"id": 39}]) == [7, 39]
        assert _ids(http, cfg, extractOnlyNew=True) == list(range(1, 41))
        insert(41)
        insert(42)
        assert _ids(http, cfg, extractOnlyNew=True) == [41, 42]
        assert _ids(http, cfg, extractOnlyNew=True) == []
        assert http.get(f"{API}/extraction-configurations/{cfg}").json()["watermark"] == 42

        table = f"t_{conn_id[:8].replace('-', '_')}"
        up = submitted_configuration(
            http,
            tpl,
            f"up_{conn_id[:8]}",
            destination={"type": "dataTable", "dataTable": table, "mode": "upsert"},
        )
        for _ in range(2):  # upserting twice keeps one row per key
            r = http.post(f"{API}/extraction-configurations/{up}/executions", json={})
            assert wait_for_status(http, up, r.json()["id"], DONE)["latestStatus"] == "COMPLETED"
        tables = {t["name"]: t for t in http.get(f"{API}/data-tables").json()["data"]}
        assert tables[table]["rowCount"] == 42


@pytest.mark.parametrize(("value", "shown"), [("row1", "'row1'"), (True, "true"), (1.5, "1.5")])
def test_selected_row_keys_must_fit_the_key_type(
    server: Server, source: tuple[str, Callable[[int], None]], value: Any, shown: str
) -> None:
    """A key value the key column's type cannot hold is 422 naming it, on every source, and
    starts nothing. Before 2026-12-04 it was 202: PostgreSQL failed the run with its own error
    (``invalid input syntax for type integer: "row1"``, ``operator does not exist: integer =
    boolean``) and SQLite read ``true`` as 1, selecting id 1 in a COMPLETED run."""
    conn_id, _ = source
    with server.client() as http:
        tpl = _template(http, conn_id)
        fields = http.get(f"{API}/templates/{tpl}").json()["fields"]
        kind = next(f["type"] for f in fields if f["name"] == "id")  # int32 (PG), int64 (SQLite)
        cfg = submitted_configuration(http, tpl, f"keys_{conn_id[:8]}")
        url = f"{API}/extraction-configurations/{cfg}/executions"
        r = http.post(url, json={"selectAll": False, "rows": [{"id": 7}, {"id": value}]})
        assert r.status_code == 422, r.text
        message = f"{shown} is not an integer (field 'id' is {kind})"
        assert [(e["field"], e["message"]) for e in r.json()["errors"]] == [("rows.1.id", message)]
        assert http.get(url).json()["totalSize"] == 0  # nothing ran
        # digits as text are the integer they spell; an empty rows list with selectAll: true
        # (seed 002's own example) is every record
        assert _ids(http, cfg, selectAll=False, rows=[{"id": "7"}, {"id": 39}]) == [7, 39]
        assert _ids(http, cfg, selectAll=True, rows=[]) == list(range(1, 41))


def test_hostile_where_clauses_never_reach_the_source(
    server: Server, source: tuple[str, Callable[[int], None]]
) -> None:
    conn_id, _ = source
    with server.client() as http:
        cfg = submitted_configuration(http, _template(http, conn_id), f"hostile_{conn_id[:8]}")
        url = f"{API}/extraction-configurations/{cfg}/executions"
        for text in CORPUS:
            r = http.post(url, json={"whereClause": text})
            assert r.status_code == 422, (text, r.text)
            assert r.json()["errors"][0]["field"] == "whereClause"
        assert http.get(url).json()["totalSize"] == 0  # no execution: nothing ran anywhere
        tree = http.get(f"{API}/connections/{conn_id}/elements").json()["data"]
        names = {t["name"] for folder in tree for t in folder["children"]}
        assert {"events", "canary"} <= names  # the canary table is still there
