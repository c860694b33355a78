"""Storage on a real S3 endpoint (moto): multipart streaming uploads, ranged reads, the
never-overwrite publish in both of its modes, prefix deletion, and presigned URLs (including
what a download answers when the store cannot sign)."""

from __future__ import annotations

import hashlib
import os
import random
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pyarrow as pa
import pytest
from starlette.requests import Request

from egress.api.downloads import serve_file
from egress.api.errors import PROBLEM
from egress.db.executions import FileRecord
from egress.sinks.file import FileSink
from egress.storage import STREAM_CHUNK, DestinationExists, ObjectHeaders, Storage, tmp_key
from tests.support.s3 import S3Server

PREFIX = "exports"
MiB = 1 << 20
BINARY = ObjectHeaders("application/octet-stream", "data.bin")


BUCKET_MODES = ["check-then-move", "copy-if-not-exists"]


def _bucket(mode: str, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Storage:
    """A Storage on a fresh bucket, configured only through the environment as in production:
    plain S3 (publish checks, then moves), or with AWS_COPY_IF_NOT_EXISTS=multipart (publish is
    one conditional copy)."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    if mode == "copy-if-not-exists":
        monkeypatch.setenv("AWS_COPY_IF_NOT_EXISTS", "multipart")
    else:
        monkeypatch.delenv("AWS_COPY_IF_NOT_EXISTS", raising=False)
    return Storage(f"s3://{s3_server.new_bucket()}/{PREFIX}")


@pytest.fixture(params=BUCKET_MODES)
def storage(
    request: pytest.FixtureRequest, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> Storage:
    return _bucket(request.param, s3_server, monkeypatch)


@pytest.fixture(params=["local-folder", *BUCKET_MODES])
def any_storage(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Storage:
    """A local folder (its files handled directly, not through obstore) or a bucket in each
    mode: the same rules hold for all."""
    if request.param == "local-folder":
        return Storage((tmp_path / "files").as_uri())
    return _bucket(request.param, request.getfixturevalue("s3_server"), monkeypatch)


def _put(storage: Storage, key: str, data: bytes) -> None:
    storage.put(key, data, BINARY)
    assert storage.head(key) is not None


def _read(storage: Storage, key: str) -> bytes:
    return b"".join(storage.stream(key))


def test_streams_a_multipart_upload_and_reads_it_back(
    storage: Storage, s3_server: S3Server
) -> None:
    data = random.Random(6).randbytes(13 * MiB + 12345)
    bucket = urlparse(storage.url).netloc
    # A lone writer streams; one of many (a split part) spools locally and uploads on close.
    for one_of_many in (False, True):
        key = tmp_key("ws", "run", "lease", f"big-{one_of_many}.bin")
        # Asking for 256 KiB parts still gets S3's 5 MiB minimum.
        writer = storage.open_writer(key, 256 << 10, BINARY, one_of_many=one_of_many)
        for start in range(0, len(data), MiB):
            writer.write(data[start : start + MiB])
            if one_of_many:
                assert storage.head(key) is None  # nothing reaches the bucket before close
        writer.close()

        info = storage.head(key)
        assert info is not None and info.size == len(data)
        # S3 marks a multipart object's ETag with its part count: 13 MiB in 5 MiB parts is 3.
        etag = httpx.head(f"{s3_server.endpoint}/{bucket}/{PREFIX}/{key}").headers["etag"]
        assert etag.strip('"').endswith("-3"), etag
        assert _read(storage, key) == data

    discarded = tmp_key("ws", "run", "lease", "discarded.bin")
    writer = storage.open_writer(discarded, 256 << 10, BINARY, one_of_many=True)
    writer.write(b"partial")
    writer.discard()
    assert storage.head(discarded) is None
    assert b"".join(storage.stream(key, 5, 17)) == data[5:17]
    across = 5 * MiB - 10  # a range spanning the first part boundary
    assert b"".join(storage.stream(key, across, across + 20)) == data[across : across + 20]
    assert b"".join(storage.stream(key, len(data) - 100)) == data[-100:]


def test_publish_moves_the_temporary_file(any_storage: Storage) -> None:
    storage = any_storage
    src, dst = tmp_key("ws", "run", "lease", "a.csv"), "out/a.csv"
    _put(storage, src, b"id\n1\n")
    storage.publish(src, dst)
    assert storage.head(src) is None
    assert _read(storage, dst) == b"id\n1\n"


def test_publish_never_overwrites(any_storage: Storage) -> None:
    storage = any_storage
    src, dst = tmp_key("ws", "run", "lease", "a.csv"), "out/a.csv"
    _put(storage, dst, b"someone else's file")
    _put(storage, src, b"ours")
    with pytest.raises(DestinationExists) as raised:
        storage.publish(src, dst)
    assert raised.value.key == dst
    assert _read(storage, dst) == b"someone else's file"
    assert _read(storage, src) == b"ours"
    # The store keeps publishing correctly after a refusal, whichever mode it settled on.
    storage.publish(src, "out/b.csv")
    assert _read(storage, "out/b.csv") == b"ours"
    assert storage.head(src) is None


@pytest.mark.parametrize("one_of_many", [False, True])
def test_a_published_object_downloads_with_its_type_and_name(
    storage: Storage, one_of_many: bool
) -> None:
    """A presigned download reaches the bucket, not the API: the object itself carries the
    Content-Type and Content-Disposition it was uploaded with, through publishing's copy."""
    src, dst = tmp_key("ws", "run", "lease", "part.csv"), "out/Zürich_v1.csv.gz"
    writer = storage.open_writer(
        src, MiB, ObjectHeaders("application/gzip", "Zürich_v1.csv.gz"), one_of_many=one_of_many
    )
    writer.write(b"\x1f\x8b fake gzip")
    writer.close()
    storage.publish(src, dst)
    storage.put("out/m.json", b"{}", ObjectHeaders("application/json", "m.json"))
    for key, content_type, name in [
        (dst, "application/gzip", "filename*=UTF-8''Z%C3%BCrich_v1.csv.gz"),
        ("out/m.json", "application/json", 'filename="m.json"'),
    ]:
        url = storage.presign(key, "GET", timedelta(seconds=60))
        assert url is not None
        r = httpx.get(url)
        assert r.status_code == 200 and r.headers["content-type"] == content_type
        assert r.headers["content-disposition"].startswith("attachment;")
        assert name in r.headers["content-disposition"]


def test_list_head_and_delete_prefix(any_storage: Storage) -> None:
    storage = any_storage
    mine = [tmp_key("ws", "run", "lease", name) for name in ("a.csv", "b.csv", "c/d.csv")]
    for key in mine:
        _put(storage, key, key.encode())
    # Same leading characters, another path segment: deleting "lease" must not touch it.
    neighbour = tmp_key("ws", "run", "lease2", "a.csv")
    _put(storage, neighbour, b"x")

    assert sorted(o.key for o in storage.list("ws/.tmp/run/lease")) == sorted(mine)
    info = storage.head(mine[0])
    assert info is not None and (info.key, info.size) == (mine[0], len(mine[0]))
    assert storage.head("out/missing.csv") is None
    assert not storage.exists("out/missing.csv")

    storage.delete_prefix("ws/.tmp/run/lease")
    assert [o.key for o in storage.list("ws/.tmp")] == [neighbour]
    storage.delete_prefix("ws/.tmp/run/nothing-here")  # an empty prefix is not an error
    storage.delete("out/missing.csv")  # nor is deleting what is not there


def test_presigned_urls_serve_the_object_to_anyone(storage: Storage) -> None:
    _put(storage, "out/a.csv", b"id,name\n1,Zoe\n")
    url = storage.presign("out/a.csv", "GET", timedelta(seconds=60))
    assert url is not None
    assert parse_qs(urlparse(url).query)["X-Amz-Expires"] == ["60"]
    r = httpx.get(url)  # no credentials of any kind
    assert r.status_code == 200 and r.content == b"id,name\n1,Zoe\n"

    head = storage.presign("out/a.csv", "HEAD", timedelta(seconds=60))
    assert head is not None
    r = httpx.head(head)
    assert r.status_code == 200 and r.headers["content-length"] == "14"
    # Expiry is enforced by S3 from X-Amz-Expires (checked above). moto 5.x does not enforce
    # it (an expired URL still answers 200), so it cannot be asserted here.


def test_a_local_folder_cannot_sign(tmp_path: Path) -> None:
    """Downloads from a local folder stream through the API: there is nothing to redirect to."""
    storage = Storage((tmp_path / "files").as_uri())
    storage.put("out/a.csv", b"x", BINARY)
    assert storage.presign("out/a.csv", "GET", timedelta(seconds=60)) is None


def test_a_local_folder_streams_any_range_from_the_file(tmp_path: Path) -> None:
    """Local objects are read from their files: whole, and any range, across chunks."""
    storage = Storage((tmp_path / "files").as_uri())
    data = bytes(range(256)) * (STREAM_CHUNK // 256 * 2 + 7)  # two chunks and a bit
    storage.put("out/big.bin", data, BINARY)
    assert b"".join(storage.stream("out/big.bin")) == data
    for start, end in (
        (0, 1),
        (5, 17),
        (STREAM_CHUNK - 3, STREAM_CHUNK + 3),
        (len(data) - 9, None),
    ):
        assert b"".join(storage.stream("out/big.bin", start, end)) == data[start:end]
    with pytest.raises(FileNotFoundError):
        list(storage.stream("out/missing.bin"))


def _write_through_a_reused_buffer(storage: Storage, key: str, one_of_many: bool) -> bytes:
    """A file sink's writes as a COPY's blocks come: views of a buffer that the caller fills
    again as soon as each write returns. The bytes that should have been written."""
    # A split's part (its own small buffer; a bucket spools it), or one file written in blocks.
    options = {"one_of_many": True} if one_of_many else {"blocks": True}
    sink = FileSink(storage, key, "csv", "none", pa.schema([]), 64 << 10, "a.csv", **options)
    wanted = b""
    block = bytearray()
    for i in range(40):
        block[:] = bytes([65 + i % 26]) * (3000 + i * 997)  # past 64 KiB a write goes through
        sink.stream.write(memoryview(block)[1:])
        wanted += bytes(block[1:])
    written = sink.close(40)
    assert (written.size, written.sha256) == (len(wanted), hashlib.sha256(wanted).hexdigest())
    return wanted


@pytest.mark.parametrize("one_of_many", [False, True])
def test_writers_are_done_with_a_buffer_when_a_write_returns(
    storage: Storage, tmp_path: Path, one_of_many: bool
) -> None:
    """Nothing copies a block on its way from a sink to the store (a local file is written in
    place; an obstore upload copies what it may keep): the bytes, their size and sha256 are
    the blocks' as they were when written, on a bucket and in a local folder."""
    local = Storage((tmp_path / "files").as_uri())
    for store in (storage, local):
        key = tmp_key("ws", "run", "lease", f"a-{one_of_many}.csv")
        wanted = _write_through_a_reused_buffer(store, key, one_of_many)
        assert _read(store, key) == wanted
    # In place: the local file is the temporary key itself, no staging file beside it.
    folder = tmp_path / "files" / tmp_key("ws", "run", "lease", "")
    assert [p.name for p in folder.iterdir()] == [f"a-{one_of_many}.csv"]


def test_a_store_that_cannot_sign_answers_503(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials that cannot be obtained (a web-identity token file that is missing) fail
    the signature: the download is a 503 problem, never a 500."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ALLOW_HTTP"):
        monkeypatch.setenv(name, s3_server.env[name])
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/egress")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/egress-token")
    storage = Storage(f"s3://{s3_server.bucket}/{PREFIX}")
    file = FileRecord("all", None, "out/a.csv", "a.csv", "text/csv", 1, "0" * 64, 1)
    request = Request({"type": "http", "method": "GET", "headers": [], "query_string": b""})

    response = serve_file(request, storage, file, ttl_s=60)
    assert response.status_code == 503
    assert response.media_type == PROBLEM
    assert "sign" in bytes(response.body).decode()


def test_a_local_folder_refuses_keys_that_would_leave_it(tmp_path: Path) -> None:
    """The local folder's files are opened directly: a key with a ``..`` (or empty) segment is
    refused by every operation, as obstore refuses it, and nothing appears outside."""
    storage = Storage((tmp_path / "files").as_uri())
    storage.put("ws/in.csv", b"x", BINARY)
    for bad in ("ws/../../outside.csv", "../outside.csv", "ws//a.csv", "ws/./a.csv"):
        with pytest.raises(ValueError, match="not a valid storage key"):
            storage.put(bad, b"x", BINARY)
        with pytest.raises(ValueError, match="not a valid storage key"):
            storage.open_writer(bad, 1024, BINARY)
        with pytest.raises(ValueError, match="not a valid storage key"):
            storage.head(bad)
        with pytest.raises(ValueError, match="not a valid storage key"):
            storage.publish("ws/in.csv", bad)
        with pytest.raises(ValueError, match="not a valid storage key"):
            storage.delete_prefix(bad)
        with pytest.raises(ValueError, match="not a valid storage key"):
            list(storage.stream(bad))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["files", "in.csv", "ws"]


def test_a_local_put_replaces_the_file_whole_and_leaves_no_staging_file(tmp_path: Path) -> None:
    storage = Storage((tmp_path / "files").as_uri())
    storage.put("ws/deep/er/m.json", b"first", BINARY)  # its folders are created
    storage.put("ws/deep/er/m.json", b"second", BINARY)
    folder = tmp_path / "files" / "ws" / "deep" / "er"
    assert [p.name for p in folder.iterdir()] == ["m.json"]
    assert _read(storage, "ws/deep/er/m.json") == b"second"


def test_a_local_publish_without_hard_links_still_never_overwrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a filesystem that has no hard links (os.link fails with EPERM, as on some network
    and FAT mounts) publishing checks, then renames: still never over someone's file."""
    storage = Storage((tmp_path / "files").as_uri())

    def no_links(src: object, dst: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    storage.put("ws/.tmp/run/lease/a.csv", b"ours", BINARY)
    storage.put("out/taken.csv", b"theirs", BINARY)
    with pytest.raises(DestinationExists):
        storage.publish("ws/.tmp/run/lease/a.csv", "out/taken.csv")
    assert _read(storage, "out/taken.csv") == b"theirs"
    storage.publish("ws/.tmp/run/lease/a.csv", "out/new/a.csv")
    assert _read(storage, "out/new/a.csv") == b"ours"
    assert storage.head("ws/.tmp/run/lease/a.csv") is None
