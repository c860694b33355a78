"""The byte stream every file writer writes into: counts bytes and computes sha256 on the fly."""

from __future__ import annotations

import hashlib
import io
from typing import Protocol


class RawWriter(Protocol):
    def write(self, data: bytes, /) -> object: ...

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

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        view = bytes(data)
        self._target.write(view)
        self._sha.update(view)
        self.size += len(view)
        return len(view)

    def tell(self) -> int:
        return self.size

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()
