"""The byte stream every file writer writes into: counts bytes and computes sha256 on the fly."""

from __future__ import annotations

import hashlib
import io
import queue
import threading
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
        self._pass(view)
        self.size += len(view)
        return len(view)

    def _pass(self, data: bytes) -> None:
        self._target.write(data)
        self._sha.update(data)

    def tell(self) -> int:
        return self.size

    def finish(self) -> None:
        """Everything written has reached the target (nothing to wait for here)."""

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


# Blocks queued for the background thread: bounds the memory to this many blocks (a COPY's
# 1 MiB each) while letting the reader run a few blocks ahead of a slow write.
BACKGROUND_DEPTH = 4


class BackgroundHashingStream(HashingStream):
    """A ``HashingStream`` whose hashing and storage writes run on a thread of its own, for a
    caller that writes large blocks while reading a socket (the COPY paths): the reader goes
    back to the socket at once instead of hashing and writing each block (~2-4 ms a MiB, the
    GIL released meanwhile), so the server is not left waiting on a full socket buffer.
    ``write`` raises the first error of the storage write; ``finish`` waits for the rest."""

    def __init__(self, target: RawWriter) -> None:
        super().__init__(target)
        self._blocks: queue.Queue[bytes | None] = queue.Queue(BACKGROUND_DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="egress-sink", daemon=True)
        self._thread.start()

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self._error is not None:
            raise self._error
        view = bytes(data)  # the caller reuses its buffer once this returns
        self._blocks.put(view)
        self.size += len(view)
        return len(view)

    def _drain(self) -> None:
        while (block := self._blocks.get()) is not None:
            if self._error is None:  # after a failure, only unblock the writer
                try:
                    self._pass(block)
                except BaseException as exc:
                    self._error = exc

    def finish(self) -> None:
        if self._thread.is_alive():
            self._blocks.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error
