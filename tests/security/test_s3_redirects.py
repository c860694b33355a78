"""Tenant S3 requests go through the guarded proxy (src/egress/sources/guarded_proxy.py), which
checks every destination — the endpoint and every redirect the S3 client follows — against
EGRESS_CONNECTION_DENY_HOSTS / _ALLOW_HOSTS and connects to the address it checked.

The fake endpoint lists ``p/x.csv`` and answers its reads with ``307`` to a denied address
(127.0.0.2 added to the deny list, standing in for 169.254.169.254): without the proxy, Arrow's
S3 client follows the redirect and the denied host's answer becomes the file.
"""

from __future__ import annotations

import base64
import datetime
import io
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import obstore
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from egress.settings import Settings
from egress.sources import guarded_proxy
from egress.sources.files import source as files_source
from egress.sources.files.settings import FilesSettings, s3_filesystem
from egress.sources.files.source import FilesSource
from egress.sources.guarded_proxy import PROXY_USER, proxy_options
from egress.sources.policy import SourcePolicy
from tests.conftest import start_server, stop_server
from tests.support.listeners import free_port, listening
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server

DENIED_BODY = b"id,FROM_THE_DENIED_HOST\n1,2\n"
DENY = "169.254.0.0/16,fe80::/10,fd00:ec2::254,127.0.0.2/32"
KEYS = {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "x"}


def _policy(tmp_path: Path, timeout_s: float = 5) -> SourcePolicy:
    settings = Settings(
        data_dir=tmp_path / "data",
        files_roots=str(tmp_path),
        connection_deny_hosts=DENY,
        source_timeout_s=timeout_s,
    )
    return SourcePolicy.from_settings(settings).interactive()


def _listing() -> bytes:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return (
        '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
        'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>'
        "<KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter>"
        f"<IsTruncated>false</IsTruncated><Contents><Key>p/x.csv</Key><LastModified>{now}"
        f'</LastModified><ETag>"e"</ETag><Size>{len(DENIED_BODY)}</Size></Contents>'
        "</ListBucketResult>"
    ).encode()


@dataclass
class FakeS3:
    port: int  # the allowed endpoint, on 127.0.0.1
    denied_port: int  # the denied host, on 127.0.0.2
    redirect_scheme: str = "http"
    seen: list[str] = field(default_factory=list)  # requests the endpoint got
    hits: list[str] = field(default_factory=list)  # requests the denied host got

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def fake_s3() -> Iterator[FakeS3]:
    fake = FakeS3(0, free_port())

    class Endpoint(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            fake.seen.append(f"{self.command} {self.path}")
            if self.path.startswith("/b/p/x.csv"):
                where = f"{fake.redirect_scheme}://127.0.0.2:{fake.denied_port}"
                self.send_response(307)
                self.send_header("Location", f"{where}/latest/meta-data")
                self.send_header("Content-Length", str(len(DENIED_BODY)))
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(b"x" * len(DENIED_BODY))
                return
            body = _listing() if self.path.startswith("/b?") else b""
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, *args: object) -> None:
            pass

    class Denied(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            fake.hits.append(f"{self.command} {self.path}")
            self.send_response(200)
            self.send_header("Content-Length", str(len(DENIED_BODY)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(DENIED_BODY)

        do_HEAD = do_GET

        def log_message(self, *args: object) -> None:
            pass

    servers = [
        ThreadingHTTPServer(("127.0.0.1", 0), Endpoint),
        ThreadingHTTPServer(("127.0.0.2", fake.denied_port), Denied),
    ]
    fake.port = servers[0].server_address[1]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    yield fake
    for s in servers:
        s.shutdown()
        s.server_close()


def _with_proxy(guarded: bool) -> Callable[..., pafs.FileSystem]:
    """``s3_filesystem`` as the project builds it, with the guarded proxy (added if the
    project does not add it itself) or, to show why it is there, without it."""

    def make(settings: FilesSettings, secrets: dict[str, str], policy: SourcePolicy) -> Any:
        made: dict[str, Any] = {}
        real = pafs.S3FileSystem
        with pytest.MonkeyPatch.context() as m:
            m.setattr(pafs, "S3FileSystem", lambda **kw: made.update(kw))
            s3_filesystem(settings, secrets, policy)
        if guarded:
            made.setdefault("proxy_options", proxy_options(policy))
        else:
            made.pop("proxy_options", None)
        return real(**made)

    return make


def _source(
    fake: FakeS3, policy: SourcePolicy, monkeypatch: pytest.MonkeyPatch, guarded: bool = True
) -> FilesSource:
    monkeypatch.setattr(files_source, "s3_filesystem", _with_proxy(guarded))
    settings = FilesSettings(url="s3://b/p", endpoint=fake.endpoint, region="us-east-1")
    return FilesSource(settings, KEYS, policy)


def _catalog_text(source: FilesSource) -> str:
    return repr(source.catalog())


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_redirect_to_a_denied_address_is_refused(
    tmp_path: Path,
    fake_s3: FakeS3,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    scheme: str,
) -> None:
    fake_s3.redirect_scheme = scheme  # https: the client asks the proxy to CONNECT
    caplog.set_level(logging.WARNING, logger="egress.sources")
    source = _source(fake_s3, _policy(tmp_path), monkeypatch)
    listing = _catalog_text(source)
    assert "x.csv" in listing  # listed, with an error instead of columns
    assert "FROM_THE_DENIED_HOST" not in listing
    with pytest.raises(OSError):
        source._fs.open_input_stream("b/p/x.csv").read()
    assert fake_s3.hits == [], f"the denied address was reached: {fake_s3.hits}"
    assert any(fake_s3.seen), "the endpoint itself was reached through the proxy"
    assert "S3 proxy refused '127.0.0.2'" in caplog.text


def test_without_the_proxy_the_client_follows_the_redirect(
    tmp_path: Path, fake_s3: FakeS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the proxy is there (and proof that the fake really redirects): the S3 client on
    its own reads the denied host's answer as the file."""
    source = _source(fake_s3, _policy(tmp_path), monkeypatch, guarded=False)
    assert "FROM_THE_DENIED_HOST" in _catalog_text(source)
    assert fake_s3.hits


def test_a_bucket_is_listed_and_read_through_the_proxy(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    real_check = guarded_proxy.allowed_addresses

    def counting(host: str, port: int, policy: SourcePolicy) -> list[str]:
        checked.append(host)
        return real_check(host, port, policy)

    monkeypatch.setattr(guarded_proxy, "allowed_addresses", counting)
    monkeypatch.setattr(files_source, "s3_filesystem", _with_proxy(True))
    bucket = s3_server.new_bucket()
    store = s3_server.store(bucket)
    table = pa.table({"id": list(range(200_000)), "name": [f"n{i}" for i in range(200_000)]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    obstore.put(store, "landing/big.parquet", buffer.getvalue())
    obstore.put(store, "landing/small.csv", b"id,region\n1,EU\n2,US\n")
    settings = FilesSettings(
        url=f"s3://{bucket}/landing", endpoint=s3_server.endpoint, region=REGION
    )
    source = FilesSource(
        settings, {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY}, _policy(tmp_path)
    )
    source.check()
    names = {(t.qualified_name, tuple(c.name for c in t.columns)) for t in source.catalog()}
    assert ("big.parquet", ("id", "name")) in names
    assert ("small.csv", ("id", "region")) in names
    assert pq.read_table(f"{bucket}/landing/big.parquet", filesystem=source._fs).equals(table)
    assert checked and set(checked) == {"127.0.0.1"}


# ------------------------------------------------------------------ the proxy, spoken to directly


def _auth(policy: SourcePolicy) -> str:
    password = proxy_options(policy)["password"]
    token = base64.b64encode(f"{PROXY_USER}:{password}".encode()).decode()
    return f"Proxy-Authorization: Basic {token}\r\n"


def _exchange(request: bytes, timeout_s: float = 10) -> bytes:
    """Send ``request`` to the proxy and read until it closes the connection."""
    with socket.create_connection(("127.0.0.1", guarded_proxy.guarded_proxy().port)) as sock:
        sock.settimeout(timeout_s)
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_the_proxy_needs_its_password(tmp_path: Path, fake_s3: FakeS3) -> None:
    _auth(_policy(tmp_path))  # the proxy runs and has a rule; the requests name none of it
    target = f"GET {fake_s3.endpoint}/b?list-type=2 HTTP/1.1\r\nHost: x\r\n"
    wrong = base64.b64encode(f"{PROXY_USER}:guess".encode()).decode()
    for auth in ("", f"Proxy-Authorization: Basic {wrong}\r\n"):
        answer = _exchange(f"{target}{auth}\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 407 "), answer
    assert fake_s3.seen == []


def test_a_connection_carries_one_request(tmp_path: Path, fake_s3: FakeS3) -> None:
    """A second request pipelined on the connection is never sent anywhere, checked or not:
    the answer to the first says ``Connection: close`` and the connection ends."""
    auth = _auth(_policy(tmp_path))
    first = f"GET {fake_s3.endpoint}/b?list-type=2 HTTP/1.1\r\nHost: a\r\n{auth}\r\n"
    second = (
        f"GET http://127.0.0.2:{fake_s3.denied_port}/latest/meta-data HTTP/1.1\r\n"
        f"Host: b\r\n{auth}\r\n"
    )
    answer = _exchange((first + second).encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nConnection: close" in head
    assert body == _listing()[: len(body)] and b"HTTP/1.1" not in body
    assert fake_s3.seen == ["GET /b?list-type=2"]
    assert fake_s3.hits == []


def test_connect_is_checked_before_tunnelling(tmp_path: Path, fake_s3: FakeS3) -> None:
    auth = _auth(_policy(tmp_path))
    denied = _exchange(f"CONNECT 127.0.0.2:{fake_s3.denied_port} HTTP/1.1\r\n{auth}\r\n".encode())
    assert denied.startswith(b"HTTP/1.1 403 ") and denied.endswith(b"\r\n\r\nhost not allowed\n")
    answer = _exchange(
        f"CONNECT 127.0.0.1:{fake_s3.port} HTTP/1.1\r\n{auth}\r\n"
        "GET /b?list-type=2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK")
    assert answer.endswith(_listing()[-20:])
    assert fake_s3.hits == []


def test_a_name_is_resolved_once_per_request_and_its_checked_address_used(
    tmp_path: Path, fake_s3: FakeS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name points at an allowed address for the first lookup and at the
    denied one after. The proxy connects to the address it checked, so the first request
    reaches the endpoint; the second is checked again and refused."""
    lookups: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":
            lookups.append(host)
            host = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    auth = _auth(_policy(tmp_path))
    request = f"GET http://rebind.test:{{}}/b?list-type=2 HTTP/1.1\r\nHost: a\r\n{auth}\r\n"
    first = _exchange(request.format(fake_s3.port).encode())
    assert first.startswith(b"HTTP/1.1 200 ")
    second = _exchange(request.format(fake_s3.denied_port).encode())
    assert second.startswith(b"HTTP/1.1 403 ")
    assert lookups == ["rebind.test", "rebind.test"]
    assert fake_s3.seen == ["GET /b?list-type=2"]
    assert fake_s3.hits == []


def test_a_silent_upstream_is_answered_504_within_the_limit(tmp_path: Path) -> None:
    policy = _policy(tmp_path, timeout_s=1)  # idle limit: 1 s + the 2 s margin
    auth = _auth(policy)
    with listening("silent") as silent:
        started = time.monotonic()
        answer = _exchange(
            f"GET http://127.0.0.1:{silent.port}/ HTTP/1.1\r\nHost: a\r\n{auth}\r\n".encode()
        )
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 504 ")
    assert 2.5 < elapsed < 8


def test_many_connections_at_once(tmp_path: Path, fake_s3: FakeS3) -> None:
    auth = _auth(_policy(tmp_path))

    def one(i: int) -> bytes:
        request = f"GET {fake_s3.endpoint}/b?list-type=2&i={i} HTTP/1.1\r\nHost: a\r\n{auth}\r\n"
        return _exchange(request.encode())

    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(one, range(200)))
    assert all(a.startswith(b"HTTP/1.1 200 ") and a.endswith(_listing()[-20:]) for a in answers)
    assert len(fake_s3.seen) == 200


# ------------------------------------------------------------------ end to end, a real server


def test_the_elements_listing_never_shows_a_denied_hosts_answer(
    tmp_path: Path, fake_s3: FakeS3
) -> None:
    """The prober's reproduction (F2): needs ``s3_filesystem`` to use the proxy."""
    server = start_server(tmp_path, env_extra={"EGRESS_CONNECTION_DENY_HOSTS": DENY})
    try:
        with server.client() as http:
            settings = {"url": "s3://b/p", "endpoint": fake_s3.endpoint, "region": "us-east-1"}
            r = http.post(
                "/api/v1/connections",
                json={"name": "lake", "type": "files", "settings": settings, "secrets": KEYS},
            )
            assert r.status_code == 201, r.text
            listing = http.get(f"/api/v1/connections/{r.json()['id']}/elements")
            assert listing.status_code == 200, listing.text
            assert "x.csv" in listing.text
            assert "FROM_THE_DENIED_HOST" not in listing.text, listing.text
            assert fake_s3.hits == [], f"the denied address was reached: {fake_s3.hits}"
        assert "S3 proxy refused '127.0.0.2'" in server.log()
    finally:
        stop_server(server)
