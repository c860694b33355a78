"""Object storage through obstore: local folder (embedded) or any bucket obstore speaks.

Files are written under a temporary key and only renamed to their final key on success, so a
reader never sees a partial file at a published name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import obstore
from obstore.exceptions import AlreadyExistsError
from obstore.store import from_url

TMP_PREFIX = ".tmp"
# Chunks streamed to HTTP clients: big enough to amortise calls, small enough to stay flat.
STREAM_CHUNK = 1 << 20


class DestinationExists(Exception):
    """The final key is taken; publishing would overwrite someone else's file."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class Storage:
    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("file:"):
            self._store = from_url(url, mkdir=True)
        else:
            self._store = from_url(url)

    def open_writer(self, key: str) -> obstore.WritableFile:
        return obstore.open_writer(self._store, key)

    def publish(self, src: str, dst: str) -> None:
        """Move ``src`` to ``dst`` unless ``dst`` exists: a run never replaces another's file."""
        try:
            obstore.rename(self._store, src, dst, overwrite=False)
        except AlreadyExistsError as exc:
            raise DestinationExists(dst) from exc

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            obstore.delete(self._store, key)

    def head(self, key: str) -> ObjectInfo | None:
        try:
            meta = obstore.head(self._store, key)
        except FileNotFoundError:
            return None
        return ObjectInfo(key=meta["path"], size=meta["size"])

    def stream(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``[start, end)`` of an object, in chunks."""
        options = {"range": (start, end)} if end is not None else {"range": {"offset": start}}
        result = obstore.get(self._store, key, options=options)  # type: ignore[arg-type]
        for chunk in result.stream(min_chunk_size=STREAM_CHUNK):
            yield bytes(chunk)

    def list(self, prefix: str | None = None) -> Iterator[ObjectInfo]:
        for page in obstore.list(self._store, prefix):
            for meta in page:
                yield ObjectInfo(key=meta["path"], size=meta["size"])


def tmp_prefix(run_id: str, lease_token: str) -> str:
    """Each attempt writes under its own prefix, so cleaning one never touches another."""
    return f"{TMP_PREFIX}/{run_id}/{lease_token}"


def tmp_key(run_id: str, lease_token: str, file_name: str) -> str:
    return f"{tmp_prefix(run_id, lease_token)}/{file_name}"
