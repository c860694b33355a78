"""A file sink fed a COPY's blocks unbuffered (``FileSink(blocks=True)``, the runner's COPY
paths): the stored bytes, size and sha256 are exactly what was written, although the caller
reuses its buffer after each write, and a failing storage write fails the writer (or its
close) with the storage's own error."""

from __future__ import annotations

import hashlib
import os
import resource
import signal
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from egress.sinks.file import FileSink
from egress.storage import STORAGE_ERRORS, Storage

BLOCK = 1 << 20


def _sink(storage: Storage, key: str) -> FileSink:
    return FileSink(storage, key, "csv", "none", pa.schema([]), 8 << 20, "x.csv", blocks=True)


def test_blocks_are_stored_and_hashed_exactly(tmp_path: Path) -> None:
    storage = Storage(tmp_path.as_uri())
    sink = _sink(storage, "out/f.csv")
    block, expected = bytearray(), hashlib.sha256()
    written = b""
    for n in range(20):
        block += os.urandom(BLOCK - n)  # each block differs in size and content
        written += block
        expected.update(block)
        sink.stream.write(block)
        block.clear()  # as copy_out does: the buffer is reused at once
    done = sink.close(20)
    assert b"".join(storage.stream("out/f.csv")) == written
    assert (done.rows, done.size, done.sha256) == (20, len(written), expected.hexdigest())


@pytest.fixture
def file_size_limit() -> Iterator[int]:
    """Files of this process may not grow past 3 MiB (a full disk, for real: the OS refuses
    the write with EFBIG)."""
    limit = 3 * BLOCK
    before = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, before[1]))
    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, before)
        signal.signal(signal.SIGXFSZ, handler)


def test_a_failing_storage_write_fails_the_writer(tmp_path: Path, file_size_limit: int) -> None:
    storage = Storage(tmp_path.as_uri())
    sink = _sink(storage, "out/f.csv")
    with pytest.raises(STORAGE_ERRORS):
        for _ in range(4 * file_size_limit // BLOCK):
            sink.stream.write(b"x" * BLOCK)
        sink.close(1)
    sink.abort()
