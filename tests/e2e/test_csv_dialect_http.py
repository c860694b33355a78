"""csvDialect over HTTP: an unknown value, or "postgres" for a non-PostgreSQL template, is a
422 problem naming csvDialect; the configuration shows the value it was given."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from tests.e2e.helpers import problem
from tests.support.http import sqlite_template

API = "/api/v1"


def test_csv_dialect_is_validated(http: httpx.Client, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    body = {
        "name": "dialect",
        "templateId": sqlite_template(http, db, "dialect_src", "t"),
        "format": "csv",
        "destination": {"type": "storage", "path": "out"},
    }
    r = http.post(f"{API}/extraction-configurations", json=body | {"csvDialect": "excel"})
    problem(r, 422, "csvDialect")
    r = http.post(f"{API}/extraction-configurations", json=body | {"csvDialect": "postgres"})
    assert "sqlite" in problem(r, 422, "csvDialect")["detail"]
    r = http.post(f"{API}/extraction-configurations", json=body | {"csvDialect": "egress"})
    assert r.status_code == 201 and r.json()["csvDialect"] == "egress", r.text
    r = http.patch(f"{API}/extraction-configurations/{r.json()['id']}", json={"csvDialect": None})
    assert r.status_code == 200 and r.json()["csvDialect"] is None, r.text
