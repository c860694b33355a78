"""Split runs over HTTP: subExtracts in details, sub-extract status and download, the zip."""

from __future__ import annotations

import csv
import io
import sqlite3
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, wait_for_status
from tests.support.http import sqlite_template, submitted_configuration

API = "/api/v1"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT, amount REAL)")
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?)",
            [(i, [None, "EU", "NA", "APAC"][i % 4], i * 1.5) for i in range(1, 101)],
        )
    return path


def _config(server: Server, db: Path, name: str, **extra: object) -> str:
    with server.client() as http:
        return submitted_configuration(
            http, sqlite_template(http, db, f"c_{name}", "orders"), name, **extra
        )


def test_split_run_over_http(server: Server, db: Path) -> None:
    cfg = _config(server, db, "by_region", splitBy="region")
    with server.client() as http:
        r = http.post(f"{API}/extraction-configurations/{cfg}/executions")
        eid = r.json()["id"]
        details = wait_for_status(http, cfg, eid, {"COMPLETED", "FAILED"})
        assert details["latestStatus"] == "COMPLETED"
        parts = {p["value"]: p for p in details["subExtracts"]}
        assert set(parts) == {None, "EU", "NA", "APAC"}
        assert all(p["recordCount"] == 25 and p["status"] == "COMPLETED" for p in parts.values())
        assert details["runs"][0]["subExtracts"] == details["subExtracts"]
        assert details["runs"][0]["file"]["fileName"].endswith(".zip")

        eu = parts["EU"]
        status = http.get(
            f"{API}/extraction-configurations/{cfg}/executions/{eid}/sub-extracts/{eu['id']}"
        ).json()
        # Each answer signs its own links (the expiry moves on): compare the rest.
        for f in (status["file"], eu["file"]):
            assert f.pop("signedUrl") and f.pop("signedUrlExpiresAt")
        assert status == {
            "id": eu["id"],
            "value": "EU",
            "executionId": eid,
            "run": 1,
            "status": "COMPLETED",
            "recordCount": 25,
            "file": eu["file"],
        }
        body = http.get(eu["file"]["downloadUrl"])
        assert body.status_code == 200
        assert "by_region_EU_" in body.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(body.text)))
        assert sorted(int(r["id"]) for r in rows) == [i for i in range(1, 101) if i % 4 == 1]
        ranged = http.get(eu["file"]["downloadUrl"], headers={"Range": "bytes=0-4"})
        assert ranged.status_code == 206 and ranged.content == body.content[:5]

        zipped = http.get(f"{API}/extraction-configurations/{cfg}/executions/{eid}/download")
        assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
            names = sorted(archive.namelist())
            assert len(names) == 4
            total = sum(len(archive.read(n).decode().splitlines()) - 1 for n in names)
        assert total == 100
        # The run's signed link serves the same zip, without a token.
        with httpx.Client(timeout=30) as browser:
            signed = browser.get(details["runs"][0]["file"]["signedUrl"])
        assert signed.status_code == 200 and signed.content == zipped.content

        missing = http.get(
            f"{API}/extraction-configurations/{cfg}/executions/{eid}/sub-extracts/nope-000000"
        )
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


def test_unsplit_execution_answers_as_its_only_sub_extract(server: Server, db: Path) -> None:
    cfg = _config(server, db, "whole")
    with server.client() as http:
        eid = http.post(f"{API}/extraction-configurations/{cfg}/executions").json()["id"]
        details = wait_for_status(http, cfg, eid, {"COMPLETED", "FAILED"})
        base = f"{API}/extraction-configurations/{cfg}/executions/{eid}"
        status = http.get(f"{base}/sub-extracts/all").json()
        assert status["id"] == "all" and status["value"] is None
        assert status["status"] == "COMPLETED" and status["recordCount"] == 100
        whole = http.get(f"{base}/sub-extracts/all/download")
        assert whole.content == http.get(f"{base}/download").content
        assert details["subExtracts"][0]["id"] == "all"


def test_split_by_unknown_field_is_422(server: Server, db: Path) -> None:
    with server.client() as http:
        conn = http.post(
            f"{API}/connections",
            json={"name": "c_bad", "type": "sqlite", "settings": {"path": str(db)}},
        ).json()
        tpl = http.get(f"{API}/templates", params={"connectionId": conn["id"]}).json()["data"][0]
        r = http.post(
            f"{API}/extraction-configurations",
            json={
                "name": "bad",
                "templateId": tpl["id"],
                "format": "csv",
                "splitBy": "nope",
                "destination": {"type": "storage", "path": "x"},
            },
        )
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "splitBy"
