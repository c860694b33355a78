"""A real `egress serve` whose output store is an S3 bucket (moto): runs publish into the
bucket, downloads answer 307 to a presigned URL that works without any token, a split run's
zip is still streamed through the API, and nothing temporary stays behind."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import obstore
import pytest

from egress.client import ChecksumMismatch, Client
from tests.conftest import Server, wait_for_status
from tests.e2e.helpers import (
    CONFIGS,
    DONE,
    anonymous,
    configuration,
    problem,
    running_server,
    sqlite_connection,
    template,
    trigger,
)
from tests.support.s3 import S3Server

PREFIX = "exports"
TTL_S = 120
# Values a CSV writer must quote or escape, so the bytes that come back prove a faithful copy.
PEOPLE = [
    (1, "Zoë", "Zürich"),
    (2, 'O"Brien, Pat', "New\nYork"),
    (3, "", "Oslo"),
    *[(i, f"person {i}", ["Lyon", "Porto", "Turku"][i % 3]) for i in range(4, 101)],
]


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server, bucket: str
) -> Iterator[Server]:
    env = {
        **s3_server.env,
        "EGRESS_STORAGE_URL": f"s3://{bucket}/{PREFIX}",
        "EGRESS_DOWNLOAD_URL_TTL_S": str(TTL_S),
    }
    with running_server(tmp_path_factory.mktemp("s3"), env=env) as s:
        yield s


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    """What a browser following the redirect is: no Egress token, no AWS credentials."""
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def connection_id(http: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    db = tmp_path_factory.mktemp("src") / "people.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, city TEXT)")
        conn.executemany("INSERT INTO people VALUES (?, ?, ?)", PEOPLE)
        conn.execute("CREATE TABLE nobody (id INTEGER PRIMARY KEY)")
    return sqlite_connection(http, db, "people")


def _completed(http: httpx.Client, cfg: str, status: str = "COMPLETED") -> dict[str, Any]:
    eid = trigger(http, cfg)["id"]
    details = wait_for_status(http, cfg, eid, DONE)
    assert details["latestStatus"] == status, details
    return details


def _redirect(http: httpx.Client, url: str, method: str = "GET") -> str:
    """The download answers 307 with a presigned URL; returns it."""
    r = http.request(method, url)
    assert r.status_code == 307, r.text
    assert r.content == b""
    assert r.headers["cache-control"] == "no-store"
    location = r.headers["location"]
    assert parse_qs(urlparse(location).query)["X-Amz-Expires"] == [str(TTL_S)]
    return location


def _rows(data: bytes) -> list[list[str]]:
    header, *rows = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    assert header == ["id", "name", "city"]
    return sorted(rows, key=lambda row: int(row[0]))


def _no_temporary_objects(s3_server: S3Server, bucket: str) -> None:
    assert not [k for k in s3_server.keys(bucket) if "/.tmp/" in k]


def test_download_redirects_to_a_presigned_url(
    http: httpx.Client,
    browser: httpx.Client,
    connection_id: str,
    s3_server: S3Server,
    bucket: str,
) -> None:
    cfg = configuration(http, template(http, connection_id, "main.people")["id"], "people")
    details = _completed(http, cfg)
    file = details["runs"][0]["file"]

    location = _redirect(http, file["downloadUrl"])
    got = browser.get(location)
    assert got.status_code == 200
    # The bucket answers with the object's own headers, set when it was uploaded.
    assert got.headers["content-type"] == "text/csv; charset=utf-8"
    assert got.headers["content-disposition"] == (
        f"attachment; filename=\"{file['name']}\"; filename*=UTF-8''{file['name']}"
    )
    assert len(got.content) == file["sizeBytes"]
    assert hashlib.sha256(got.content).hexdigest() == file["sha256"]
    assert _rows(got.content) == [[str(i), name, city] for i, name, city in PEOPLE]

    # HEAD is redirected too, to a URL signed for HEAD.
    head = browser.head(_redirect(http, file["downloadUrl"], "HEAD"))
    assert head.status_code == 200 and head.headers["content-length"] == str(file["sizeBytes"])

    # The run's only sub-extract is the same object.
    sub = details["subExtracts"][0]["file"]["downloadUrl"]
    assert browser.get(_redirect(http, sub)).content == got.content

    # Published beside each other under the configured prefix and the workspace's own
    # namespace, nothing temporary left over.
    (key,) = [k for k in s3_server.keys(bucket) if k.endswith(f"/out/{file['name']}")]
    workspace, rest = key.removeprefix(f"{PREFIX}/").split("/", 1)
    assert workspace and rest == f"out/{file['name']}"
    manifest_key = f"{key}.manifest.json"  # the data file's whole name + .manifest.json
    assert {key, manifest_key} <= set(s3_server.keys(bucket))
    manifest = json.loads(bytes(obstore.get(s3_server.store(bucket), manifest_key).bytes()))
    assert manifest["executionId"] == details["id"]
    assert [(f["name"], f["sha256"], f["recordCount"]) for f in manifest["files"]] == [
        (file["name"], file["sha256"], len(PEOPLE))
    ]
    _no_temporary_objects(s3_server, bucket)


def test_the_python_client_follows_the_redirect(
    server: Server, http: httpx.Client, connection_id: str, tmp_path: Path, s3_server: S3Server
) -> None:
    """The SDK lands on the bucket without handing it the token, names the file as the run's
    file is named (not ASCII here), and verifies it against the run's sha256."""
    cfg = configuration(http, template(http, connection_id, "main.people")["id"], "Zürich people")
    details = _completed(http, cfg)
    file = details["runs"][0]["file"]
    to_bucket: list[httpx.Request] = []
    with Client(server.base_url, server.token) as client:
        client._bucket.event_hooks["request"].append(to_bucket.append)
        [path] = client.download(client.executions.get(details["id"], cfg), to=tmp_path)
    [request] = to_bucket  # the presigned URL, and no Egress token with it
    assert request.url.host == urlparse(s3_server.endpoint).hostname and "X-Amz-Signature" in str(
        request.url
    )
    assert "authorization" not in request.headers
    assert path.name == file["name"] and path.name.startswith("Zürich_people_")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == file["sha256"]


def test_the_python_client_resumes_from_the_bucket_with_if_match(
    server: Server, http: httpx.Client, browser: httpx.Client, connection_id: str, tmp_path: Path
) -> None:
    """A download broken off earlier (its first bytes and the object's ETag on disk) resumes
    from a fresh redirect with Range + If-Match (S3 ignores If-Range); bytes from an object
    that has changed since (another ETag: 412) are thrown away and the file fetched whole."""
    cfg = configuration(http, template(http, connection_id, "main.people")["id"], "resumed")
    details = _completed(http, cfg)
    file = details["runs"][0]["file"]
    whole = browser.get(_redirect(http, file["downloadUrl"]))
    etag = whole.headers["etag"]

    def broken_off(name: str, head: bytes, validator: str) -> Path:
        target = tmp_path / name
        target.with_name(f"{name}.part").write_bytes(head)
        state = {"sha256": file["sha256"], "etag": validator}
        target.with_name(f"{name}.part.json").write_text(json.dumps(state))
        return target

    with Client(server.base_url, server.token) as client:
        execution = client.executions.get(details["id"], cfg)
        [path] = client.download(execution, to=broken_off("a.csv", whole.content[:100], etag))
        assert path.read_bytes() == whole.content
        # Resumed, not fetched whole: wrong bytes kept under the right ETag are caught by the
        # hash, and nothing is put in place.
        with pytest.raises(ChecksumMismatch):
            client.download(execution, to=broken_off("b.csv", b"x" * 100, etag))
        [path] = client.download(execution, to=broken_off("c.csv", b"x" * 100, '"stale"'))
        assert path.read_bytes() == whole.content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "c.csv"]


def test_problems_come_before_any_redirect(http: httpx.Client, connection_id: str) -> None:
    cfg = configuration(http, template(http, connection_id, "main.people")["id"], "people_again")
    eid = _completed(http, cfg)["id"]
    base = f"{CONFIGS}/{cfg}/executions/{eid}"
    assert "99" in problem(http.get(f"{base}/download", params={"run": 99}), 404)["detail"]
    problem(http.get(f"{base}/sub-extracts/nope-000000/download"), 404)

    empty = configuration(http, template(http, connection_id, "main.nobody")["id"], "nobody")
    eid = _completed(http, empty, "COMPLETED_NO_DATA")["id"]
    problem(http.get(f"{CONFIGS}/{empty}/executions/{eid}/download"), 404)


def test_split_run_zip_streams_from_the_bucket(
    http: httpx.Client,
    browser: httpx.Client,
    connection_id: str,
    s3_server: S3Server,
    bucket: str,
) -> None:
    tpl = template(http, connection_id, "main.people")["id"]
    cfg = configuration(http, tpl, "people_by_city", splitBy="city")
    details = _completed(http, cfg)
    parts = details["subExtracts"]
    assert len(parts) == len({city for _, _, city in PEOPLE})

    # No single object to redirect to: the zip is built from the bucket and streamed.
    zipped = http.get(details["runs"][0]["file"]["downloadUrl"])
    assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        assert sorted(archive.namelist()) == sorted(p["file"]["name"] for p in parts)
        rows = [row for name in archive.namelist() for row in _rows(archive.read(name))]
    assert sorted(rows, key=lambda row: int(row[0])) == [
        [str(i), name, city] for i, name, city in PEOPLE
    ]

    # Each part on its own is one object: redirected.
    zurich = next(p for p in parts if p["value"] == "Zürich")
    data = browser.get(_redirect(http, zurich["file"]["downloadUrl"])).content
    assert _rows(data) == [["1", "Zoë", "Zürich"]]
    _no_temporary_objects(s3_server, bucket)


def test_no_redirect_without_a_token(
    server: Server, http: httpx.Client, connection_id: str
) -> None:
    """The signed URL is a capability: only an authorised caller is handed one."""
    cfg = configuration(http, template(http, connection_id, "main.people")["id"], "people_auth")
    url = _completed(http, cfg)["runs"][0]["file"]["downloadUrl"]
    with anonymous(server) as no_token:
        r = no_token.get(url)
    problem(r, 401)
    assert "location" not in r.headers


def test_deleting_a_configuration_empties_its_folder_in_the_bucket(
    http: httpx.Client, connection_id: str, s3_server: S3Server, bucket: str
) -> None:
    tpl = template(http, connection_id, "main.people")["id"]
    cfg = configuration(
        http, tpl, "people_gone", splitBy="city", destination={"type": "storage", "path": "gone"}
    )
    _completed(http, cfg)
    _completed(http, cfg)
    mine = [k for k in s3_server.keys(bucket) if "/gone/" in k]
    assert len([k for k in mine if k.endswith(".manifest.json")]) == 2
    assert len(mine) == 2 * (1 + len({city for _, _, city in PEOPLE}))

    assert http.delete(f"{CONFIGS}/{cfg}").status_code == 204
    assert [k for k in s3_server.keys(bucket) if "/gone/" in k] == []


def test_a_signed_link_redirects_to_a_fresh_presigned_url(
    http: httpx.Client, browser: httpx.Client, connection_id: str
) -> None:
    cfg = configuration(http, template(http, connection_id, "main.people")["id"], "signed")
    file = _completed(http, cfg)["runs"][0]["file"]
    assert file["signedUrl"].startswith(http.base_url.scheme + "://")
    # No token at all: the link is the credential; the bytes still come from the bucket.
    got = browser.get(_redirect(browser, file["signedUrl"]))
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == file["sha256"]
