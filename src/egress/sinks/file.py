"""One output file being written: storage writer → sha256/size → buffer → gzip → format."""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa

from egress.sinks.stream import HashingStream
from egress.sinks.writers import BatchWriter, DictionaryChoice, content_type, format_writer
from egress.storage import ObjectHeaders, Storage


@dataclass(frozen=True)
class WrittenFile:
    rows: int
    size: int
    sha256: str


class FileSink:
    """Write batches (or raw bytes of the format, for fast paths) to ``key``; a bucket serves
    it as ``download_name`` of the format's content type."""

    def __init__(
        self,
        storage: Storage,
        key: str,
        fmt: str,
        compression: str,
        schema: pa.Schema,
        buffer_bytes: int,
        download_name: str,
        *,
        one_of_many: bool = False,
        encoded: bool = False,
        blocks: bool = False,
        dictionary: DictionaryChoice | None = None,
    ) -> None:
        self.key = key
        headers = ObjectHeaders(content_type(fmt, compression), download_name)
        self._raw = storage.open_writer(key, buffer_bytes, headers, one_of_many=one_of_many)
        self._hashing = HashingStream(self._raw)
        # ``blocks``: the caller writes large blocks itself (a COPY's 1 MiB): a buffer here
        # would hold up to ``buffer_bytes`` of the file back until ``close``, after the read.
        self._buffered: BinaryIO = (
            self._hashing  # type: ignore[assignment]
            if blocks
            else io.BufferedWriter(self._hashing, buffer_bytes)  # type: ignore[type-var]
        )
        self.stream: BinaryIO = self._buffered
        # ``encoded``: the caller writes the format's bytes, compressed, into ``stream`` itself
        # (a parallel read's parts, each its own gzip member).
        if compression == "gzip" and not encoded:
            self.stream = gzip.GzipFile(fileobj=self._buffered, mode="wb", mtime=0)  # type: ignore[assignment]
        self._fmt = fmt
        self._schema = schema
        self._dictionary = dictionary  # Parquet: the choice a split's parts share
        self._writer: BatchWriter | None = None
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self.write_many([batch])

    def write_many(self, batches: list[pa.RecordBatch]) -> None:
        if self._writer is None:
            self._writer = format_writer(self._fmt, self.stream, self._schema, self._dictionary)
        self._writer.write_many(batches)
        self.rows += sum(b.num_rows for b in batches)

    def close(self, rows: int | None = None) -> WrittenFile:
        """Finish the format and the upload; ``rows`` overrides the count (fast paths)."""
        try:
            if self._writer is None and rows is None:
                self._writer = format_writer(self._fmt, self.stream, self._schema, self._dictionary)
            if self._writer is not None:
                self._writer.close()
            if self.stream is not self._buffered:
                self.stream.close()
            self._buffered.flush()
        finally:
            self._raw.close()
        return WrittenFile(
            rows=self.rows if rows is None else rows,
            size=self._hashing.size,
            sha256=self._hashing.sha256,
        )

    def abort(self) -> None:
        """Stop writing; the caller deletes the temporary object."""
        self._raw.discard()
