"""Issue 10, files and paths (items 1, 3, 6, the files part of 7, the sqlite existence oracle),
against a real server whose files root (pytest's base temporary folder) contains its own data
dir: the metadata database, warehouse, secret key and storage folder are in reach by path
unless the policy refuses them."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from egress.demo import create_orders_db
from tests.conftest import Server, wait_for_status
from tests.e2e.helpers import (
    API,
    DONE,
    api,
    configuration,
    problem,
    running_server,
    template,
    trigger,
)
from tests.support.s3 import S3Server

CONNECTIONS = f"{API}/connections"
CONFINED = "must be inside a files root"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    tmp = tmp_path_factory.mktemp("confinement")
    with running_server(tmp) as server:
        yield server, tmp


@pytest.fixture
def http(served: tuple[Server, Path]) -> Iterator[httpx.Client]:
    with api(served[0]) as client:
        yield client


def _create(http: httpx.Client, type_: str, settings: dict[str, Any]) -> httpx.Response:
    name = f"c{time.monotonic_ns()}"
    return http.post(CONNECTIONS, json={"name": name, "type": type_, "settings": settings})


def _created(http: httpx.Client, type_: str, settings: dict[str, Any]) -> str:
    r = _create(http, type_, settings)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _link(link: Path, target: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink():
        link.unlink()
    link.symlink_to(target)
    return link


def _own_files(server: Server) -> dict[str, Path]:
    data = server.data_dir
    assert (data / "egress.db").is_file() and (data / "secret.key").is_file()
    return {
        "metadata": data / "egress.db",
        "metadata wal": data / "egress.db-wal",
        "warehouse": data / "warehouse.db",
        "secret key": data / "secret.key",
        "an output file": data / "files" / "out" / "x.db",
        "a missing file": data / "nothing-here.db",
    }


def test_sqlite_paths_to_egress_own_files_are_refused(
    http: httpx.Client, served: tuple[Server, Path]
) -> None:
    server, tmp = served
    details = set()
    for what, target in _own_files(server).items():
        relative = target.relative_to(tmp)
        for spelling in [
            str(target),
            str(_link(tmp / "links" / f"{target.name}.link", target)),
            str(_link(tmp / "links" / "data-dir", server.data_dir) / target.name),
        ]:
            body = problem(_create(http, "sqlite", {"path": spelling}), 422, "settings.path")
            assert CONFINED in body["detail"], (what, spelling, body)
            details.add(body["detail"])
        for traversal in [f"{tmp}/elsewhere/../{relative}", f"{tmp}/./../{tmp.name}/{relative}"]:
            body = problem(_create(http, "sqlite", {"path": traversal}), 422, "settings.path")
            assert "'..'" in body["detail"], body
    assert len(details) == 1  # the same answer whether the file exists or not
    # An update cannot point a saved connection there either.
    good = tmp / "good.db"
    create_orders_db(good, rows=3)
    cid = _created(http, "sqlite", {"path": str(good)})
    r = http.patch(f"{CONNECTIONS}/{cid}", json={"settings": {"path": str(server.data_dir)}})
    problem(r, 422, "settings.path")
    assert http.get(f"{CONNECTIONS}/{cid}").json()["settings"] == {"path": str(good)}


def test_file_urls_to_egress_own_folders_are_refused(
    http: httpx.Client, served: tuple[Server, Path]
) -> None:
    server, tmp = served
    data = server.data_dir
    (tmp / "elsewhere").mkdir(exist_ok=True)
    for target in [data, data / "files", data / ".tmp", data / "sources" / ".." / "files"]:
        relative = Path(os.path.normpath(target)).relative_to(tmp)
        for url in [
            f"file://{target}",
            f"file://{tmp}/elsewhere/../{relative}",
            f"file://{tmp}/elsewhere/%2e%2e/{relative}",
            f"file://{tmp}/elsewhere/%2E%2E/{relative}",
            f"file://localhost{target}",
            f"file://{target.parent.name}{target}",
            f"file:{target}",
            f"file:///{target}",
            f"file://{_link(tmp / 'links' / 'storage', data / 'files')}",
        ]:
            body = problem(_create(http, "files", {"url": url}), 422, "settings.url")
            assert "settings.url" in body["detail"], (url, body)
    # The root itself contains the data dir: allowed, but the listing leaves Egress's files out.
    (tmp / "visible.csv").write_text("id\n1\n")
    (data / "sources").mkdir(exist_ok=True)
    (data / "sources" / "shared.csv").write_text("id\n1\n")
    cid = _created(http, "files", {"url": tmp.as_uri()})
    r = http.get(f"{CONNECTIONS}/{cid}/elements")
    assert r.status_code == 200, r.text
    paths = [c["path"] for f in r.json()["data"] for c in f["children"]]
    assert "visible.csv" in paths
    assert f"{data.name}/sources/shared.csv" in paths
    assert not [p for p in paths if p.startswith(f"{data.name}/files/")], paths


def _run_status(http: httpx.Client, cfg: str) -> dict[str, Any]:
    execution = trigger(http, cfg)
    details = wait_for_status(http, cfg, execution["id"], DONE)
    run: dict[str, Any] = details["runs"][0]  # type: ignore[index]
    return run


def test_a_sqlite_symlink_swapped_in_after_create_cannot_escape(
    http: httpx.Client, served: tuple[Server, Path]
) -> None:
    server, tmp = served
    shop = create_orders_db(tmp / "swap" / "shop.db", rows=5)
    link = _link(tmp / "swap" / "link.db", shop)
    cid = _created(http, "sqlite", {"path": str(link)})
    cfg = configuration(http, template(http, cid, "main.orders")["id"], "swapped")
    assert http.post(f"{CONNECTIONS}/{cid}/test").json()["ok"] is True
    assert _run_status(http, cfg)["status"] == "COMPLETED"

    _link(link, server.data_dir / "egress.db")
    test = http.post(f"{CONNECTIONS}/{cid}/test").json()
    assert test["ok"] is False and "as a SQLite database" in test["error"], test
    body = problem(http.get(f"{CONNECTIONS}/{cid}/elements"), 422, "connection")
    assert "as a SQLite database" in body["detail"]
    run = _run_status(http, cfg)
    assert run["status"] == "FAILED" and "as a SQLite database" in run["errorMessage"], run
    assert "token" not in str(run).lower()


def test_a_folder_symlink_swapped_in_after_create_cannot_escape(
    http: httpx.Client, served: tuple[Server, Path]
) -> None:
    server, tmp = served
    real = tmp / "fswap" / "real"
    real.mkdir(parents=True)
    (real / "orders.csv").write_text("id,amount\n1,2.5\n")
    link = _link(tmp / "fswap" / "link", real)
    cid = _created(http, "files", {"url": link.as_uri()})
    cfg = configuration(http, template(http, cid, "orders.csv")["id"], "fswapped")
    assert _run_status(http, cfg)["status"] == "COMPLETED"

    storage = server.data_dir / "files"
    (storage / "orders.csv").write_text("id,amount\n9,9\n")  # as if another workspace's output
    _link(link, storage)
    test = http.post(f"{CONNECTIONS}/{cid}/test").json()
    assert test["ok"] is False and CONFINED in test["error"], test
    problem(http.get(f"{CONNECTIONS}/{cid}/elements"), 422, "connection")
    run = _run_status(http, cfg)
    assert run["status"] == "FAILED" and CONFINED in run["errorMessage"], run

    # A file symlink inside a permitted folder is checked when it is read, too.
    _link(link, real)
    (real / "orders.csv").unlink()
    _link(real / "orders.csv", storage / "orders.csv")
    run = _run_status(http, cfg)
    assert run["status"] == "FAILED" and CONFINED in run["errorMessage"], run


def test_sqlite_test_does_not_tell_what_exists(
    http: httpx.Client, served: tuple[Server, Path]
) -> None:
    server, tmp = served
    folder = tmp / "oracle"
    folder.mkdir()
    (folder / "folder.db").mkdir()
    (folder / "text.db").write_text("not a database\n")
    cases = ["missing.db", "folder.db", "text.db", "forbidden.db"]
    ids = {name: _created(http, "sqlite", {"path": str(folder / name)}) for name in cases}
    _link(folder / "forbidden.db", server.data_dir / "egress.db")  # swapped in after saving
    errors, details = set(), set()
    for name, cid in ids.items():
        path = str(folder / name)
        test = http.post(f"{CONNECTIONS}/{cid}/test").json()
        assert test["ok"] is False
        errors.add(test["error"].replace(path, "<path>"))
        body = problem(http.get(f"{CONNECTIONS}/{cid}/elements"), 422)
        details.add(body["detail"].replace(path, "<path>"))
    assert len(errors) == 1 and len(details) == 1, (errors, details)
    assert not (folder / "missing.db").exists()  # opening is read-only: nothing was created


# ------------------------------------------------------------------ catalog limits

MAX_ENTRIES = 40
MAX_DEPTH = 4


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])


def test_browsing_loops_wide_and_deep_trees_stays_within_the_limits(
    tmp_path: Path,
) -> None:
    base = tmp_path.parent
    env = {
        "EGRESS_FILES_ROOTS": f"{base},/usr",
        "EGRESS_CATALOG_MAX_ENTRIES": str(MAX_ENTRIES),
        "EGRESS_CATALOG_MAX_DEPTH": str(MAX_DEPTH),
    }
    loop = tmp_path / "loop"
    (loop / "a" / "b").mkdir(parents=True)
    (loop / "a" / "b" / "x.csv").write_text("id\n1\n")
    _link(loop / "a" / "b" / "up", loop)
    _link(loop / "a" / "self", loop / "a")
    _link(loop / "a" / "b" / "etc", Path("/etc"))  # leaves the roots: not followed
    wide = tmp_path / "wide"
    wide.mkdir()
    for i in range(MAX_ENTRIES + 1):
        (wide / f"f{i}.csv").write_text("id\n1\n")
    deep = tmp_path / "deep" / "1" / "2" / "3" / "4" / "5"
    deep.mkdir(parents=True)
    (deep / "x.csv").write_text("id\n1\n")
    with running_server(tmp_path, env=env) as server, api(server) as http:
        rss_before = _rss_kib(server.process.pid)
        cid = _created(http, "files", {"url": loop.as_uri()})
        r = http.get(f"{CONNECTIONS}/{cid}/elements")
        assert r.status_code == 200, r.text
        assert [c["path"] for f in r.json()["data"] for c in f["children"]] == ["a/b/x.csv"]

        for folder, message in [
            (wide, f"more than {MAX_ENTRIES} entries; set EGRESS_CATALOG_MAX_ENTRIES"),
            (deep.parents[4], f"more than {MAX_DEPTH} levels deep; set EGRESS_CATALOG_MAX_DEPTH"),
            (Path("/usr"), f"more than {MAX_ENTRIES} entries"),
        ]:
            cid = _created(http, "files", {"url": folder.as_uri()})
            body = problem(http.get(f"{CONNECTIONS}/{cid}/elements"), 422, "connection")
            assert message in body["detail"], body
            problem(http.get(f"{API}/templates", params={"connectionId": cid}), 422)
        # Generous: the walk stopped early instead of materialising /usr.
        assert _rss_kib(server.process.pid) - rss_before < 128 * 1024


# ------------------------------------------------------------------ S3 endpoints and credentials


class _Recorder(ThreadingHTTPServer):
    """A fake S3 endpoint that answers 404 to everything and remembers each request's
    Authorization header: a signed request means credentials were sent."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.seen.append((self.path, self.headers.get("Authorization")))
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_HEAD = do_GET

            def log_message(self, *args: object) -> None:
                return None

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    server = _Recorder()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "endpoint",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/",
        "http://user:secret@127.0.0.1:9000",
        "http://127.0.0.1:9000/bucket",
        "http://127.0.0.1:9000?x=1",
        "127.0.0.1:9000",
    ],
)
def test_endpoints_are_http_host_and_port_only(http: httpx.Client, endpoint: str) -> None:
    settings = {"url": "s3://tenant-bucket/in", "endpoint": endpoint}
    body = problem(_create(http, "files", settings), 422, "settings.endpoint")
    assert "http://host[:port]" in body["detail"]


def test_endpoints_on_denied_addresses_are_refused(http: httpx.Client) -> None:
    for host in ["169.254.169.254", "[fe80::1]", "[::ffff:169.254.169.254]"]:
        settings = {"url": "s3://tenant-bucket/in", "endpoint": f"http://{host}"}
        body = problem(_create(http, "files", settings), 422, "settings.endpoint")
        assert "not allowed" in body["detail"], body


def _signed(recorder: _Recorder) -> list[tuple[str, str | None]]:
    return [(path, auth) for path, auth in recorder.seen if auth is not None]


@pytest.mark.parametrize("ambient", ["false", "true"])
def test_no_ambient_credentials_ever_reach_a_tenant_endpoint(
    tmp_path: Path, s3_server: S3Server, recorder: _Recorder, ambient: str
) -> None:
    """The server has AWS credentials in its environment (for its own S3 storage); a files
    connection without keys never signs with them, allowed or not, towards its own endpoint."""
    bucket = s3_server.new_bucket()
    env = {
        **s3_server.env,
        "EGRESS_STORAGE_URL": f"s3://{bucket}/egress",
        "EGRESS_FILES_AMBIENT_CREDENTIALS": ambient,
    }
    with running_server(tmp_path, env=env) as server, api(server) as http:
        settings = {"url": "s3://tenant-bucket/in", "endpoint": recorder.endpoint}
        cid = _created(http, "files", settings)
        test = http.post(f"{CONNECTIONS}/{cid}/test").json()
        assert test["ok"] is False
        problem(http.get(f"{CONNECTIONS}/{cid}/elements"), 422)
        assert recorder.seen, "the connection reached its endpoint"
        assert not _signed(recorder), _signed(recorder)

        body = problem(_create(http, "files", {"url": f"s3://{bucket}/x"}), 422, "settings.url")
        assert "own storage bucket" in body["detail"]


def test_the_endpoint_host_is_checked_again_at_test_and_run(
    tmp_path: Path, recorder: _Recorder
) -> None:
    """An endpoint saved while allowed, then denied by the operator: /test, browsing and runs
    refuse it without sending it a request."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "orders.csv").write_text("id\n1\n")
    with running_server(tmp_path) as server, api(server) as http:
        cid = _created(http, "files", {"url": data.as_uri()})
        cfg = configuration(http, template(http, cid, "orders.csv")["id"], "moving")
        settings = {"url": "s3://tenant-bucket/in", "endpoint": recorder.endpoint}
        keys = {"accessKeyId": "tenant-key", "secretAccessKey": "tenant-secret"}
        r = http.patch(f"{CONNECTIONS}/{cid}", json={"settings": settings, "secrets": keys})
        assert r.status_code == 200, r.text
    recorder.seen.clear()
    env = {"EGRESS_CONNECTION_DENY_HOSTS": "127.0.0.0/8"}
    with running_server(tmp_path, env=env) as server, api(server) as http:
        test = http.post(f"{CONNECTIONS}/{cid}/test").json()
        assert test["ok"] is False and "not allowed" in test["error"], test
        problem(http.get(f"{CONNECTIONS}/{cid}/elements"), 422, "connection")
        execution = trigger(http, cfg)
        run = wait_for_status(http, cfg, execution["id"], DONE)["runs"][0]  # type: ignore[index]
        assert run["status"] == "FAILED" and "not allowed" in run["errorMessage"], run
    assert recorder.seen == []
