"""The path rules of tenant connections: spelling first, then the real path against the roots
and Egress's own files; the bounded catalog walk; the S3 client's credentials."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest

from egress.settings import Settings
from egress.sources import confine, files
from egress.sources.base import SourceError
from egress.sources.files import FilesSettings, endpoint_address
from egress.sources.policy import SourcePolicy
from egress.sources.walk import Entry, walk


def _policy(tmp_path: Path, **extra: Any) -> SourcePolicy:
    settings = Settings(data_dir=tmp_path / "data", files_roots=str(tmp_path), **extra)
    return SourcePolicy.from_settings(settings)


@pytest.mark.parametrize(
    "path",
    ["relative/x.db", "//host/x.db", "/a/../b.db", "/a/..", "/a/b\x00.db", ""],
)
def test_spellings_that_hide_a_target_are_refused(path: str) -> None:
    with pytest.raises(confine.PathRefused):
        confine.checked_spelling(path)


def test_plain_spellings_pass_unchanged() -> None:
    for path in ["/a/b.db", "/a/..b/c.db", "/a/%2e%2e/x.db", "/a/./b.db"]:
        assert confine.checked_spelling(path) == path


@pytest.mark.parametrize(
    "url",
    [
        "file://host/srv/in",
        "file://localhost/srv/in",
        "file:/srv/in",
        "file:////srv/in",
        "file:///srv/%2e%2e/etc",
        "file:///srv/%2E%2E/etc",
        "file:///srv/../etc",
        "file:///srv/in?x=1",
        "file:///srv/in#frag",
        "file:///srv/%00x",
        "file:relative",
    ],
)
def test_file_urls_that_hide_a_target_are_refused(url: str) -> None:
    with pytest.raises(confine.PathRefused):
        confine.file_url_path(url)


def test_file_urls_are_decoded() -> None:
    assert confine.file_url_path("file:///srv/my%20data") == "/srv/my data"
    assert confine.file_url_path("file:///") == "/"


def test_own_files_are_refused_even_inside_a_root(tmp_path: Path) -> None:
    policy = _policy(tmp_path, storage_url=(tmp_path / "out").as_uri())
    data = policy.data_dir
    for own in [
        data,
        data / "egress.db",
        data / "egress.db-wal",
        data / "warehouse.db-shm",
        data / "secret.key",
        data / "files" / "ws" / "a.csv",
        data / ".tmp",
        data / "sourcesX",
        tmp_path / "out",
        tmp_path / "out" / "a.csv",
    ]:
        assert not confine.is_allowed(own, policy), own
    for fine in [tmp_path, data / "sources", data / "sources" / "x.db", tmp_path / "outside"]:
        assert confine.is_allowed(fine, policy), fine
    assert not confine.is_allowed(tmp_path.parent, policy)


def test_sqlite_metadata_elsewhere_keeps_its_siblings_private(tmp_path: Path) -> None:
    meta = tmp_path / "meta" / "egress.db"
    policy = _policy(tmp_path, database_url=f"sqlite:///{meta}")
    for name in ["egress.db", "egress.db-wal", "egress.db-shm", "egress.db-journal"]:
        assert not confine.is_allowed(meta.parent / name, policy), name
    assert confine.is_allowed(meta.parent / "egress.db-old", policy)


def test_the_real_path_decides(tmp_path: Path) -> None:
    policy = _policy(tmp_path / "root")
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    (root / "data" / "egress.db").write_bytes(b"")
    (root / "ok.db").write_bytes(b"")
    (root / "to-meta.db").symlink_to(root / "data" / "egress.db")
    (root / "to-etc").symlink_to("/etc")
    (root / "to-ok.db").symlink_to(root / "ok.db")
    assert confine.confined(str(root / "to-ok.db"), policy) == root / "ok.db"
    assert confine.confined(str(root / "missing.db"), policy) == root / "missing.db"
    messages = set()
    for refused in ["to-meta.db", "to-etc/passwd", "data/egress.db"]:
        with pytest.raises(confine.PathRefused) as caught:
            confine.confined(str(root / refused), policy)
        messages.add(str(caught.value))
    with pytest.raises(confine.PathRefused) as caught:
        confine.confined("/etc/does-not-exist", policy)
    messages.add(str(caught.value))
    assert len(messages) == 1  # no hint of what exists


# -------------------------------------------------------------- the walk


def _tree(entries: dict[str, list[str]]) -> Any:
    """A lister over a fake tree: folder -> names; a name ending in '/' is a folder."""

    def lister(folder: str) -> Iterable[Entry | None]:
        for name in entries[folder]:
            is_dir = name.endswith("/")
            clean = name.rstrip("/")
            yield Entry(clean, f"{folder}/{clean}", is_dir, (1, 1), None)

    return lister


def test_the_walk_lists_in_name_order_within_the_limits(tmp_path: Path) -> None:
    lister = _tree({"r": ["b/", "a.csv"], "r/b": ["c.csv"]})
    policy = _policy(tmp_path)
    assert [rel for rel, _ in walk(lister, "r", policy)] == ["a.csv", "b", "b/c.csv"]
    assert [rel for rel, _ in walk(lister, "r", policy, recursive=False)] == ["a.csv", "b"]


def test_the_walk_stops_at_the_entry_limit_without_listing_further(tmp_path: Path) -> None:
    listed: list[int] = []

    def endless(folder: str) -> Iterable[Entry | None]:
        for i in range(10**9):
            listed.append(i)
            yield Entry(f"f{i}.csv", f"{folder}/f{i}", False, (1, 1), None)

    policy = replace(_policy(tmp_path), catalog_max_entries=50)
    with pytest.raises(SourceError, match="more than 50 entries; set EGRESS_CATALOG_MAX_ENTRIES"):
        list(walk(endless, "r", policy))
    assert len(listed) == 51


def test_the_walk_stops_at_the_depth_limit(tmp_path: Path) -> None:
    def deep(folder: str) -> Iterable[Entry | None]:
        yield Entry("d", f"{folder}/d", True, (None, None), None)

    policy = replace(_policy(tmp_path), catalog_max_depth=4)
    with pytest.raises(SourceError, match="more than 4 levels deep; set EGRESS_CATALOG_MAX_DEPTH"):
        list(walk(deep, "r", policy))


def test_a_local_symlink_loop_is_listed_once(tmp_path: Path) -> None:
    root = tmp_path / "loop"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "x.csv").write_text("id\n1\n")
    (root / "a" / "b" / "up").symlink_to(root)
    (root / "a" / "self").symlink_to(root / "a")
    (root / "out").symlink_to("/usr")
    source = files.FilesSource(FilesSettings(url=root.as_uri()), {}, _policy(tmp_path))
    assert [f.path for f in source._data_files()] == ["a/b/x.csv"]


# -------------------------------------------------------------- S3


@pytest.mark.parametrize(
    "endpoint",
    [
        "file:///etc",
        "gopher://127.0.0.1:70",
        "http://",
        "http://user:pw@127.0.0.1:9000",
        "http://127.0.0.1:9000/path",
        "http://127.0.0.1:9000?x=1",
        "http://127.0.0.1:port",
        "127.0.0.1:9000",
    ],
)
def test_endpoints_are_only_scheme_host_and_port(endpoint: str) -> None:
    with pytest.raises(ValueError, match=r"http://host\[:port\]"):
        endpoint_address(endpoint)


def test_endpoint_addresses() -> None:
    assert endpoint_address("http://127.0.0.1:9000") == ("http", "127.0.0.1", 9000)
    assert endpoint_address("https://minio.example/") == ("https", "minio.example", 443)


@pytest.mark.parametrize(
    ("ambient", "endpoint", "secrets", "anonymous"),
    [
        (False, None, {}, True),
        (False, "http://127.0.0.1:9000", {}, True),
        (True, "http://127.0.0.1:9000", {}, True),
        (True, None, {}, False),
        (False, None, {"accessKeyId": "k", "secretAccessKey": "s"}, None),
    ],
)
def test_ambient_credentials_only_when_allowed_and_never_with_an_endpoint(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ambient: bool,
    endpoint: str | None,
    secrets: dict[str, str],
    anonymous: bool | None,
) -> None:
    made: list[dict[str, Any]] = []
    monkeypatch.setattr(pafs, "S3FileSystem", lambda **kw: made.append(kw))
    policy = _policy(tmp_path, files_ambient_credentials=ambient, source_timeout_s=7)
    files.FilesSource(FilesSettings(url="s3://b/p", endpoint=endpoint), secrets, policy)
    assert made[0].get("anonymous") is anonymous
    assert (made[0]["connect_timeout"], made[0]["request_timeout"]) == (7, 7)


def test_the_own_bucket_is_refused(tmp_path: Path) -> None:
    policy = _policy(tmp_path, storage_url="s3://egress-out/exports")
    with pytest.raises(SourceError, match="Egress's own storage bucket"):
        files.FilesSource(FilesSettings(url="s3://egress-out/other"), {}, policy)


def test_a_listing_may_pass_through_the_data_dir_to_its_sources_folder(tmp_path: Path) -> None:
    policy = _policy(tmp_path)
    assert confine.is_passable(policy.data_dir, policy)
    assert not confine.is_allowed(policy.data_dir, policy)
    assert not confine.is_passable(policy.data_dir / "files", policy)
    outside = _policy(tmp_path / "root")  # a data dir outside every root stays closed
    assert not confine.is_passable(_policy(tmp_path).data_dir, outside)
