"""Downloading a run's file as a client would: headers that identify the bytes (length, ETag,
Digest, name), byte ranges for resuming, conditional requests, and clear 404s when there is
no file."""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from egress.demo import create_orders_db
from tests.conftest import Server, wait_for_status
from tests.e2e.helpers import (
    CONFIGS,
    DONE,
    anonymous,
    configuration,
    problem,
    sqlite_connection,
    template,
    trigger,
)

FIELDS = ["id", "customer_name", "amount", "notes"]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = create_orders_db(tmp_path_factory.mktemp("shop") / "shop.db", rows=200)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE returns (id INTEGER PRIMARY KEY, reason TEXT)")
    return db


@pytest.fixture(scope="module")
def connection_id(http: httpx.Client, shop: Path) -> str:
    return sqlite_connection(http, shop, "shop")


def _completed(http: httpx.Client, cfg: str) -> dict[str, Any]:
    eid = trigger(http, cfg)["id"]
    details = wait_for_status(http, cfg, eid, DONE)
    assert details["latestStatus"] == "COMPLETED", details
    return details


@pytest.fixture(scope="module")
def done(http: httpx.Client, connection_id: str) -> dict[str, Any]:
    """A completed CSV run: its details, download URL and bytes."""
    tpl = template(http, connection_id, "main.orders")
    cfg = configuration(http, tpl["id"], "Zürich orders", fields=FIELDS)
    details = _completed(http, cfg)
    url = details["runs"][0]["file"]["downloadUrl"]
    return {"cfg": cfg, "details": details, "url": url, "data": http.get(url).content}


def test_headers_identify_the_file(http: httpx.Client, done: dict[str, Any]) -> None:
    r = http.get(done["url"])
    assert r.status_code == 200
    data = r.content
    file = done["details"]["runs"][0]["file"]
    sha = hashlib.sha256(data).hexdigest()
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-length"] == str(len(data)) == str(file["sizeBytes"])
    assert r.headers["etag"] == f'"{sha}"' and file["sha256"] == sha
    assert r.headers["digest"] == f"sha-256={base64.b64encode(bytes.fromhex(sha)).decode()}"
    assert r.headers["accept-ranges"] == "bytes"
    # A non-ASCII name: an ASCII fallback plus the exact UTF-8 name (RFC 6266).
    name = file["name"]
    assert name.startswith("Zürich_orders_") and name.endswith("_v1.csv")
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert f'filename="{name.replace("ü", "_")}"' in disposition
    assert f"filename*=UTF-8''{quote(name)}" in disposition
    # The content is the CSV of the chosen fields.
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert rows[0] == FIELDS and len(rows) == 201


def test_head_answers_the_headers_without_the_body(
    http: httpx.Client, done: dict[str, Any]
) -> None:
    r = http.head(done["url"])
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-length"] == str(len(done["data"]))
    assert r.headers["etag"] == f'"{hashlib.sha256(done["data"]).hexdigest()}"'


def test_byte_ranges(http: httpx.Client, done: dict[str, Any]) -> None:
    url, data = done["url"], done["data"]
    size = len(data)

    part = http.get(url, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206
    assert part.content == data[:10] and len(part.content) == 10
    assert part.headers["content-range"] == f"bytes 0-9/{size}"
    assert part.headers["content-length"] == "10"
    assert part.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'

    tail = http.get(url, headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == data[-5:]
    assert tail.headers["content-range"] == f"bytes {size - 5}-{size - 1}/{size}"

    rest = http.get(url, headers={"Range": "bytes=10-"})
    assert rest.status_code == 206 and rest.content == data[10:]
    assert rest.headers["content-range"] == f"bytes 10-{size - 1}/{size}"

    one = http.get(url, headers={"Range": "bytes=0-0"})
    assert one.status_code == 206 and one.content == data[:1]
    clipped = http.get(url, headers={"Range": f"bytes={size - 3}-{size + 100}"})
    assert clipped.status_code == 206 and clipped.content == data[-3:]

    # Resuming a download piece by piece gives back the whole file.
    pieces = [
        http.get(url, headers={"Range": f"bytes={i}-{i + 999}"}).content
        for i in range(0, size, 1000)
    ]
    assert b"".join(pieces) == data

    for unsatisfiable in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
        r = http.get(url, headers={"Range": unsatisfiable})
        problem(r, 416)
        assert r.headers["content-range"] == f"bytes */{size}"

    # Forms we do not serve as ranges get the whole file.
    for whole in ("bytes=0-1,5-6", "items=0-9", "bytes=9-2"):
        r = http.get(url, headers={"Range": whole})
        assert r.status_code == 200 and r.content == data, whole


def test_conditional_requests(http: httpx.Client, done: dict[str, Any]) -> None:
    url, data = done["url"], done["data"]
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    for header in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        r = http.get(url, headers={"If-None-Match": header})
        assert r.status_code == 304, header
        assert r.content == b"" and r.headers["etag"] == etag
    changed = http.get(url, headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200 and changed.content == data

    # If-Range: the range only while the client's copy is current.
    fresh = http.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206 and fresh.content == data[:10]
    stale = http.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert stale.status_code == 200 and stale.content == data
    # A stale copy gets the whole file even when its Range is beyond this one (it was 416).
    beyond = http.get(url, headers={"Range": f"bytes={len(data) + 5}-", "If-Range": '"stale"'})
    assert beyond.status_code == 200 and beyond.content == data
    current = http.get(url, headers={"Range": f"bytes={len(data) + 5}-", "If-Range": etag})
    assert current.status_code == 416


def test_gzip_compression(http: httpx.Client, connection_id: str, done: dict[str, Any]) -> None:
    tpl = template(http, connection_id, "main.orders")
    cfg = configuration(http, tpl["id"], "zipped", fields=FIELDS, compression="gzip")
    file = _completed(http, cfg)["runs"][0]["file"]
    assert file["name"].endswith("_v1.csv.gz")
    r = http.get(file["downloadUrl"])
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/gzip"
    assert r.headers["etag"] == f'"{hashlib.sha256(r.content).hexdigest()}"'
    assert gzip.decompress(r.content) == done["data"]


def test_a_run_without_data_has_no_file(http: httpx.Client, connection_id: str) -> None:
    tpl = template(http, connection_id, "main.returns")
    cfg = configuration(http, tpl["id"], "no_returns")
    eid = trigger(http, cfg)["id"]
    details = wait_for_status(http, cfg, eid, DONE)
    assert details["latestStatus"] == "COMPLETED_NO_DATA", details
    run = details["runs"][0]
    assert (run["recordCount"], run["file"], run["errorMessage"]) == (0, None, None)
    base = f"{CONFIGS}/{cfg}/executions/{eid}"
    problem(http.get(f"{base}/download"), 404)
    assert "no records" in problem(http.get(f"{base}/download", params={"run": 1}), 404)["detail"]
    assert "COMPLETED_NO_DATA" in problem(http.post(f"{base}/rerun"), 409)["detail"]


def test_unknown_runs_and_executions(http: httpx.Client, done: dict[str, Any]) -> None:
    cfg = done["cfg"]
    eid = done["details"]["id"]
    base = f"{CONFIGS}/{cfg}/executions"
    assert "99" in problem(http.get(f"{base}/{eid}/download", params={"run": 99}), 404)["detail"]
    problem(http.get(f"{base}/{eid}/download", params={"run": 0}), 422, "query.run")
    problem(http.get(f"{base}/{eid}/download", params={"run": 2**31}), 422, "query.run")
    problem(http.get(f"{base}/{eid}/sub-extracts/all", params={"run": 10**30}), 422, "query.run")
    problem(http.get(f"{base}/{eid}/download", params={"run": "latest"}), 422, "query.run")
    problem(http.get(f"{base}/00000000-0000-0000-0000-000000000000/download"), 404)
    problem(http.get(f"{base}/nope/download"), 404)
    problem(http.get(f"{CONFIGS}/nope/executions/{eid}/download"), 404)
    # An execution is only found under its own configuration.
    other = configuration(http, _template_of(http, cfg), "other")
    problem(http.get(f"{CONFIGS}/{other}/executions/{eid}/download"), 404)
    problem(http.get(f"{CONFIGS}/{other}/executions/{eid}"), 404)


def _template_of(http: httpx.Client, cfg: str) -> str:
    return str(http.get(f"{CONFIGS}/{cfg}").json()["templateId"])


def test_a_signed_link_downloads_without_a_token_and_cannot_be_altered(
    http: httpx.Client, server: Server, done: dict[str, Any], connection_id: str
) -> None:
    file = done["details"]["runs"][0]["file"]
    part = done["details"]["runs"][0]["subExtracts"][0]["file"]
    assert file["signedUrlExpiresAt"] and part["signedUrl"] != file["signedUrl"]
    with anonymous(server) as browser:
        r = browser.get(file["signedUrl"])
        assert r.status_code == 200 and r.content == done["data"]
        assert r.headers["etag"] == f'"{file["sha256"]}"'
        ranged = browser.get(part["signedUrl"], headers={"Range": "bytes=0-9"})
        assert ranged.status_code == 206 and ranged.content == done["data"][:10]

        # Another execution's link, with this one's payload pasted in: refused, like any edit.
        other = _completed(http, done["cfg"])["runs"][0]["file"]["signedUrl"]
        key, payload, _mac = file["signedUrl"].rsplit("/", 1)[1].split(".")
        forged = other.rsplit("/", 1)[0] + "/" + ".".join([key, payload, other.rsplit(".", 1)[1]])
        for bad in (forged, file["signedUrl"][:-3] + "AAA", file["signedUrl"] + "x"):
            body = problem(browser.get(bad), 403)
            assert body["detail"] == "this link is not valid: it was not issued by this server"
