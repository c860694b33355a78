"""Object storage through obstore: local folder (embedded) or any bucket obstore speaks.

Files are written under a temporary key and only renamed to their final key on success, so a
reader never sees a partial file at a published name.

Buckets (``s3://bucket/prefix``, ``gs://…``, ``az://…``) take their endpoint, region and
credentials from the environment exactly as obstore reads it (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ALLOW_HTTP``, …), so
Egress adds no settings of its own for them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import urlparse
from urllib.request import url2pathname

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError, NotSupportedError
from obstore.store import AzureStore, GCSStore, ObjectStore, S3Store, from_url

from egress.domain.naming import content_disposition

if TYPE_CHECKING:
    from obstore import Attributes

# What a failing store raises: the OS for a local folder, obstore for a bucket.
STORAGE_ERRORS: tuple[type[Exception], ...] = (OSError, BaseError)

TMP_PREFIX = ".tmp"
# Object stores need multipart parts of at least 5 MiB; a local folder needs no big buffer.
MIN_MULTIPART_BYTES = 5 << 20
LOCAL_BUFFER_BYTES = 256 << 10
# What a writer takes: a block of the caller's, or a view of one (no copy on the way).
Buffer = bytes | bytearray | memoryview
# Chunks streamed to HTTP clients: big enough to amortise calls, small enough to stay flat.
STREAM_CHUNK = 1 << 20


def error_text(exc: BaseException) -> str:
    """What a store's error says, without the debug dump obstore appends to it (a few dozen
    lines of its internal structures after a blank line)."""
    return str(exc).split("\n\nDebug source:", 1)[0].strip()


class DestinationExists(Exception):
    """The final key is taken; publishing would overwrite someone else's file."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class ObjectHeaders:
    """What a bucket answers a download of the object with (a presigned URL reaches the bucket,
    not the API). A local folder keeps no such metadata: the API sets these when it streams."""

    content_type: str
    file_name: str

    def attributes(self) -> Attributes:
        return {
            "Content-Type": self.content_type,
            "Content-Disposition": content_disposition(self.file_name),
        }


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class Storage:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_local = url.startswith("file:")
        self._local_root = Path(url2pathname(urlparse(url).path)) if self.is_local else None
        if self.is_local:
            self._store = from_url(url, mkdir=True)
        else:
            self._store = from_url(url)
        # Plain S3 cannot copy-if-not-exists unless AWS_COPY_IF_NOT_EXISTS says how; the first
        # publish that obstore refuses switches this store to check-then-move for good.
        self._atomic_publish = True
        # That variable's ``multipart`` copy (AWS) creates the object without the source's
        # Content-Type and Content-Disposition: publishing copies once more to keep them.
        self._copy_drops_headers = isinstance(self._store, S3Store) and os.environ.get(
            "AWS_COPY_IF_NOT_EXISTS", ""
        ).startswith("multipart")

    def open_writer(
        self,
        key: str,
        buffer_bytes: int,
        headers: ObjectHeaders,
        *,
        one_of_many: bool = False,
    ) -> Upload:
        """A streaming writer of ``key``.

        On a local folder, a buffered file written in place (``_FileUpload``). On an object
        store, a multipart upload — whose parts must be at least 5 MiB, so a writer that is
        ``one_of_many`` open at once (a split part) spools to a local temporary file instead
        and uploads when closed: 1,000 parts then hold 1,000 small buffers, not 5 GiB of
        multipart parts. The object carries ``headers``, and
        publishing's server-side copy keeps them.
        """
        local = self._local_path(key)
        if local is not None:
            return _FileUpload(local, min(buffer_bytes, LOCAL_BUFFER_BYTES))
        if one_of_many:
            return _SpooledUpload(self._store, key, headers.attributes())
        return _ObstoreUpload(
            obstore.open_writer(
                self._store,
                key,
                buffer_size=max(buffer_bytes, MIN_MULTIPART_BYTES),
                attributes=headers.attributes(),
            )
        )

    def put(self, key: str, data: bytes, headers: ObjectHeaders) -> None:
        local = self._local_path(key)
        if local is not None:
            _write_whole(local, data)
            return
        obstore.put(self._store, key, data, attributes=headers.attributes())

    def _local_path(self, key: str) -> Path | None:
        """The file of ``key`` in a local folder (None on a bucket). The local operations go
        to the file itself: through obstore each is a hand-off to its runtime's threads, a
        few tenths of a millisecond of a tiny run's ~8 ms of CPU (issue 19's drain). Refused
        as obstore refuses it: a key with an empty, ``.`` or ``..`` segment, which could
        otherwise name a file outside the folder."""
        if self._local_root is None:
            return None
        parts = key.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"not a valid storage key: {key!r}")
        return self._local_root.joinpath(*parts)

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def publish(self, src: str, dst: str) -> None:
        """Move ``src`` to ``dst`` unless ``dst`` exists: a run never replaces another's file."""
        local_src, local_dst = self._local_path(src), self._local_path(dst)
        if local_src is not None and local_dst is not None:
            try:
                _move_unless_taken(local_src, local_dst)
            except FileExistsError as exc:
                raise DestinationExists(dst) from exc
            return
        if self._atomic_publish:
            try:
                if self._copy_drops_headers:
                    obstore.copy(self._store, src, dst, overwrite=False)
                    # ``dst`` is ours since the copy above: this one only restores its headers.
                    obstore.copy(self._store, src, dst, overwrite=True)
                    obstore.delete(self._store, src)
                else:
                    obstore.rename(self._store, src, dst, overwrite=False)
                return
            except AlreadyExistsError as exc:
                raise DestinationExists(dst) from exc
            except NotSupportedError:
                self._atomic_publish = False
        # Check, then copy and delete. A file created at ``dst`` between the check and the copy
        # would be replaced. Final names differ by configuration, run start and run number, and
        # the runner adds the execution id (then the attempt) to a name it finds taken, so two
        # runs meet on one name only if both pick it within this window: narrow, not closed.
        # AWS_COPY_IF_NOT_EXISTS (``multipart`` on AWS S3) enables the atomic path above.
        if self.exists(dst):
            raise DestinationExists(dst)
        obstore.rename(self._store, src, dst, overwrite=True)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            obstore.delete(self._store, key)

    def delete_prefix(self, prefix: str) -> None:
        """Delete everything under ``prefix`` — on a local folder including the staging files
        an interrupted upload leaves (``name#1``), which listing does not show."""
        target = self._local_path(prefix)
        if target is not None and self._local_root is not None:
            shutil.rmtree(target, ignore_errors=True)
            # Then the folders above it that this left empty (the run's folder once its last
            # attempt is gone, ``.tmp``): rmdir refuses a folder another run is writing into,
            # and the store creates missing folders again when it writes.
            for folder in target.parents:
                if folder == self._local_root:
                    break
                try:
                    folder.rmdir()
                except OSError:
                    break
            return
        # Listed in full before deleting, so pagination never skips a key; one bulk request
        # per 1,000 keys on S3. Uploads a dead worker left incomplete are not listed: a bucket
        # lifecycle rule (AbortIncompleteMultipartUpload) removes them.
        keys = [obj.key for obj in self.list(prefix)]
        if keys:
            obstore.delete(self._store, keys)

    def head(self, key: str) -> ObjectInfo | None:
        local = self._local_path(key)
        if local is not None:
            try:
                found = local.stat()
            except (FileNotFoundError, NotADirectoryError):
                return None
            return ObjectInfo(key=key, size=found.st_size) if S_ISREG(found.st_mode) else None
        try:
            meta = obstore.head(self._store, key)
        except FileNotFoundError:
            return None
        return ObjectInfo(key=meta["path"], size=meta["size"])

    def stream(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``[start, end)`` of an object, in chunks."""
        local = self._local_path(key)
        if local is not None:
            yield from _file_chunks(local, start, end)
            return
        options = {"range": (start, end)} if end is not None else {"range": {"offset": start}}
        result = obstore.get(self._store, key, options=options)  # type: ignore[arg-type]
        for chunk in result.stream(min_chunk_size=STREAM_CHUNK):
            yield bytes(chunk)

    def presign(self, key: str, method: Literal["GET", "HEAD"], ttl: timedelta) -> str | None:
        """A URL that lets anyone ``method`` the object until ``ttl`` passes, signed with the
        store's credentials; None when the store cannot sign (a local folder)."""
        if not isinstance(self._store, S3Store | GCSStore | AzureStore):
            return None
        return obstore.sign(self._store, method, key, ttl)

    def list(self, prefix: str | None = None) -> Iterator[ObjectInfo]:
        for page in obstore.list(self._store, prefix):
            for meta in page:
                yield ObjectInfo(key=meta["path"], size=meta["size"])


def _write_whole(path: Path, data: bytes) -> None:
    """``data`` at ``path``, replacing it whole: written beside it first, as obstore does, so a
    reader never sees half of it."""
    staging = path.with_name(f"{path.name}#{secrets.token_hex(4)}")
    try:
        staging.write_bytes(data)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging.write_bytes(data)
    try:
        os.replace(staging, path)
    except OSError:
        staging.unlink(missing_ok=True)
        raise


def _move_unless_taken(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``; FileExistsError if ``dst`` exists. A hard link refuses a taken
    name atomically (obstore's own local rename does the same); on a filesystem without hard
    links, check then rename (a file created at ``dst`` in between would be replaced)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except (FileExistsError, FileNotFoundError):
        raise
    except OSError:  # no hard links here (EPERM, ENOTSUP, EXDEV …)
        if dst.exists():
            raise FileExistsError(dst) from None
        os.replace(src, dst)
        return
    os.unlink(src)


def _file_chunks(path: Path, start: int, end: int | None) -> Iterator[bytes]:
    """A local object read straight from its file: about a tenth of the CPU of the store's
    own stream, which the downloads of a local store spend most of their time in."""
    with path.open("rb") as f:
        f.seek(start)
        left = None if end is None else end - start
        while left is None or left > 0:
            chunk = f.read(STREAM_CHUNK if left is None else min(STREAM_CHUNK, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk


class Upload(Protocol):
    """Bytes on their way to one object: ``close`` finishes it, ``discard`` gives it up (the
    caller deletes whatever reached the store). ``write`` is done with ``data`` when it
    returns: the caller may reuse it."""

    def write(self, data: Buffer, /) -> object: ...

    def close(self) -> None: ...

    def discard(self) -> None: ...


class _FileUpload:
    """A local object written straight into its file, as ``_file_chunks`` reads it. obstore's
    local writer hands every buffer-full to a thread of its runtime (with a wake-up each way)
    and writes a staging file it renames when closed: a split's parts, 64 KiB buffers, cost
    ~4 times the CPU of plain writes that way. A run writes under its temporary prefix, which
    nothing reads before the file is closed and published, and which ``delete_prefix`` clears
    after a failed attempt, so the staging file protected nothing here."""

    def __init__(self, path: Path, buffer_bytes: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("wb", buffering=buffer_bytes)

    def write(self, data: Buffer, /) -> object:
        return self._file.write(data)

    def close(self) -> None:
        self._file.close()

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # the partial file is deleted by the caller
            self._file.close()


class _ObstoreUpload:
    def __init__(self, writer: obstore.WritableFile) -> None:
        self._writer = writer

    def write(self, data: Buffer, /) -> object:
        # A copy: the caller reuses its buffer once this returns, and obstore may still hold
        # (and upload) what it was given.
        return self._writer.write(data if isinstance(data, bytes) else bytes(data))

    def close(self) -> None:
        self._writer.close()

    def discard(self) -> None:
        with contextlib.suppress(Exception):  # the partial object is deleted by the caller
            self._writer.close()


class _SpooledUpload:
    """A local temporary file, uploaded as one multipart upload when closed."""

    def __init__(self, store: ObjectStore, key: str, attributes: Attributes) -> None:
        self._store = store
        self._key = key
        self._attributes = attributes
        # Lives as long as the upload: close() or discard() closes it.
        self._spool = tempfile.TemporaryFile(prefix="egress-part-")  # noqa: SIM115

    def write(self, data: Buffer, /) -> object:
        return self._spool.write(data)

    def close(self) -> None:
        try:
            self._spool.seek(0)
            writer = obstore.open_writer(
                self._store,
                self._key,
                buffer_size=MIN_MULTIPART_BYTES,
                attributes=self._attributes,
            )
            while chunk := self._spool.read(STREAM_CHUNK):
                writer.write(chunk)
            writer.close()
        finally:
            self._spool.close()

    def discard(self) -> None:
        self._spool.close()


def tmp_prefix(workspace_id: str, run_id: str, lease_token: str) -> str:
    """Each attempt writes under its own prefix, so cleaning one never touches another; like
    every key a run writes, it starts with the workspace's id."""
    return f"{workspace_id}/{TMP_PREFIX}/{run_id}/{lease_token}"


def tmp_key(workspace_id: str, run_id: str, lease_token: str, file_name: str) -> str:
    return f"{tmp_prefix(workspace_id, run_id, lease_token)}/{file_name}"
