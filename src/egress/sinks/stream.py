"""The byte stream every file writer writes into: counts bytes and computes sha256 on the fly."""

from __future__ import annotations

import hashlib
import io
from typing import Protocol

from egress.storage import Buffer


class RawWriter(Protocol):
    def write(self, data: Buffer, /) -> object: ...  # done with ``data`` when it returns

    def close(self) -> None: ...


class HashingStream(io.RawIOBase):
    """A write-only file object that forwards to storage and hashes what passes through."""

    def __init__(self, target: RawWriter) -> None:
        super().__init__()
        self._target = target
        self._sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Buffer) -> int:  # type: ignore[override]
        # No copy: the target is done with ``data`` when it returns (an upload that keeps
        # what it is given copies it itself).
        self._target.write(data)
        self._sha.update(data)
        size = memoryview(data).nbytes
        self.size += size
        return size

    def tell(self) -> int:
        return self.size

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()
