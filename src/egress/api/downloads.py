"""Serving a stored file: a redirect to a presigned URL on a bucket, else streamed (with Range,
ETag, Digest); or a zip of a split run's parts, always streamed."""

from __future__ import annotations

import base64
import logging
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from typing import Literal

from fastapi import Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from egress.api.errors import problem
from egress.api.ranges import Unsatisfiable, parse_range
from egress.domain.naming import content_disposition
from egress.services.executions import FileRecord
from egress.storage import STORAGE_ERRORS, Storage

log = logging.getLogger(__name__)
# Already-compressed formats are stored in the zip as they are.
_COMPRESSED = ("application/gzip", "application/vnd.apache.parquet")


def none_match(header: str | None, etag: str) -> bool:
    """If-None-Match (RFC 9110 §13.1.2): ``*`` or a list of tags, compared weakly."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    return etag in {tag.strip().removeprefix("W/") for tag in header.split(",")}


def serve_file(request: Request, storage: Storage, file: FileRecord, ttl_s: int) -> Response:
    """On a bucket, ``307`` to a URL signed for ``ttl_s`` seconds: the bytes go from the store
    to the client without passing through the API. A local folder is streamed."""
    method: Literal["GET", "HEAD"] = "HEAD" if request.method == "HEAD" else "GET"
    try:
        url = storage.presign(file.storage_key, method, timedelta(seconds=ttl_s))
    except STORAGE_ERRORS as exc:  # e.g. credentials that could not be fetched
        log.warning("signing a download URL for %s failed: %s", file.storage_key, exc)
        return problem(503, "the file store could not sign a download URL; try again later")
    if url is None:
        return stream_file(request, storage, file)
    # The URL expires: no cache may keep the redirect longer than the signature lives.
    return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})


def stream_file(request: Request, storage: Storage, file: FileRecord) -> Response:
    etag = f'"{file.sha256}"'
    digest = base64.b64encode(bytes.fromhex(file.sha256)).decode()
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Digest": f"sha-256={digest}",
        "Repr-Digest": f"sha-256=:{digest}:",
        "Content-Disposition": content_disposition(file.file_name),
    }
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    # A stale If-Range (another file than the client's copy) means: ignore the Range and send
    # the whole file (RFC 9110 §13.2.2), even a Range this file could not satisfy.
    if_range = request.headers.get("if-range")
    wanted = request.headers.get("range") if if_range is None or if_range == etag else None
    try:
        byte_range = parse_range(wanted, file.size_bytes)
    except Unsatisfiable:
        return problem(
            416,
            f"the range is outside the file ({file.size_bytes} bytes)",
            headers={"Content-Range": f"bytes */{file.size_bytes}"},
        )
    if byte_range is None:
        headers["Content-Length"] = str(file.size_bytes)
        return StreamingResponse(
            storage.stream(file.storage_key), media_type=file.content_type, headers=headers
        )
    headers["Content-Length"] = str(byte_range.length)
    headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{file.size_bytes}"
    return StreamingResponse(
        storage.stream(file.storage_key, byte_range.start, byte_range.end + 1),
        status_code=206,
        media_type=file.content_type,
        headers=headers,
    )


class _Spool:
    """A write-only sink that hands out what was written since the last take()."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._pos = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def take(self) -> bytes:
        out, self._chunks = b"".join(self._chunks), []
        return out


def _zip_chunks(storage: Storage, files: list[FileRecord]) -> Iterator[bytes]:
    spool = _Spool()
    # A non-seekable target makes zipfile write data descriptors: nothing is held in memory
    # beyond one chunk of one part.
    with zipfile.ZipFile(spool, mode="w", allowZip64=True) as archive:
        for f in files:
            method = zipfile.ZIP_STORED if f.content_type in _COMPRESSED else zipfile.ZIP_DEFLATED
            info = zipfile.ZipInfo(f.file_name)
            info.compress_type = method
            with archive.open(info, mode="w", force_zip64=True) as entry:
                for chunk in storage.stream(f.storage_key):
                    entry.write(chunk)
                    if data := spool.take():
                        yield data
            if data := spool.take():
                yield data
    if data := spool.take():
        yield data


def stream_zip(storage: Storage, name: str, files: list[FileRecord]) -> Response:
    return StreamingResponse(
        _zip_chunks(storage, files),
        media_type="application/zip",
        headers={"Content-Disposition": content_disposition(name)},
    )


class Downloads:
    """Serving the files a service found, from the store they were written to."""

    def __init__(self, storage: Storage, ttl_s: int) -> None:
        self._storage = storage
        self._ttl_s = ttl_s

    def file(self, request: Request, file: FileRecord) -> Response:
        return serve_file(request, self._storage, file, self._ttl_s)

    def zip(self, name: str, files: list[FileRecord]) -> Response:
        return stream_zip(self._storage, name, files)
