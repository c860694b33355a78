"""A parallel read written in parallel: each partition encodes its own part of the one file.

On the shared-writer path (``read_ahead``) the partitions' sessions read on threads of their
own but one thread encodes every row, so two partitions went no faster than one stream (the
writer was the bottleneck: bench/README.md, issue 19). Here each partition's thread also
encodes (its own ``COPY``, or its own CSV/JSONL writer over its batches: Arrow's kernels and
the drivers release the GIL) and, when compressed, compresses its part as a gzip member of its
own (members concatenated are one gzip stream). The first partition writes straight into the
file; each later one into a local spill file, appended in key order as it is written once the
parts before it are done (the first key range is cut narrower for that), so the file holds
the parts concatenated — the single stream's bytes, rows in key-range order. The file is
still one temporary object published by the commit protocol (all or nothing).

Parquet is not written so: its parts cannot be concatenated bytewise (a file is one footer),
and a split run keeps routing rows to its files on one thread; both stay on the shared writer.
Memory: per partition, what its writer buffers and one batch (or one COPY block).
"""

from __future__ import annotations

import gzip
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from functools import partial
from typing import BinaryIO

import pyarrow as pa

from egress.engine.control import RunControl
from egress.engine.job import Job
from egress.sinks.file import FileSink, WrittenFile
from egress.sinks.writers import WRITERS, CsvWriter
from egress.sources import Source
from egress.sources.arrow_types import arrow_schema, byte_slices
from egress.sources.base import FilePart, PartitionedSource, ProgressFn

CONCATENATED_FORMATS = ("csv", "jsonl")
COPY_BLOCK_BYTES = 1 << 20
# How long the follower waits for more of a part still being written.
FOLLOW_WAIT_S = 0.01


class _Stopped(Exception):
    """Another part failed: this one ends at its next progress report."""


def writes_in_parts(job: Job, source: Source) -> bool:
    """Whether the job's one file is written part by part, in parallel."""
    return (
        job.plan.parallelism > 1
        and isinstance(source, PartitionedSource)
        and job.split_by is None
        and job.data_table is None
        and job.fmt in CONCATENATED_FORMATS
    )


def file_parts(job: Job, source: Source, batch_rows: int, batch_bytes: int) -> list[FilePart]:
    """The partitions' writers, sessions open in the shared snapshot: the source's own CSV
    (``COPY``) where the single stream would use it, else its batches through the format's
    writer."""
    if job.copies(source):
        return source.copy_partitions(job.plan, job.rendering)  # type: ignore[attr-defined, no-any-return]
    assert isinstance(source, PartitionedSource)
    streams = source.read_partitions(job.plan, batch_rows, batch_bytes)
    schema = arrow_schema(job.output)
    return [
        FilePart(
            partial(_encode, stream, job.fmt, schema, batch_bytes),
            partial(_close, stream),
        )
        for stream in streams
    ]


def write_parted(
    sink: FileSink,
    job: Job,
    source: Source,
    control: RunControl,
    batch_rows: int,
    batch_bytes: int,
) -> WrittenFile:
    """The job's one file, written in parts into ``sink`` (opened ``encoded``)."""
    with control.awaiting_source():  # the snapshot's sessions are opened here
        parts = file_parts(job, source, batch_rows, batch_bytes)
    return sink.close(write_parts(sink.stream, parts, job.compression, control))


def write_parts(out: BinaryIO, parts: list[FilePart], compression: str, control: RunControl) -> int:
    """Every part on a thread of its own, ``out`` receiving them in order; the row count.
    Progress is the sum over the parts; the first failure (or stop signal) of any part ends
    the others at their next report and is raised here, after every thread has ended."""
    counts = [0] * len(parts)
    lock = threading.Lock()
    failed = threading.Event()
    done = [threading.Event() for _ in parts]
    errors: list[BaseException] = []

    def reporter(index: int) -> ProgressFn:
        def report(processed: int) -> None:
            if failed.is_set():
                raise _Stopped
            with lock:
                counts[index] = processed
                total = sum(counts)
            control.report(total)  # raises the run's stop signal, if any

        return report

    def run(index: int, target: BinaryIO) -> None:
        part = parts[index]
        try:
            if compression == "gzip":
                with gzip.GzipFile(fileobj=target, mode="wb", mtime=0) as member:
                    counts[index] = part.write(member, index == 0, reporter(index))  # type: ignore[arg-type]
            else:
                counts[index] = part.write(target, index == 0, reporter(index))
            target.flush()  # all of it readable by the follower before ``done``
            done[index].set()
        except BaseException as exc:
            with lock:
                if not isinstance(exc, _Stopped):
                    errors.append(exc)
            failed.set()
        finally:
            part.close()

    with ExitStack() as spills:
        try:
            targets = [out] + [spills.enter_context(tempfile.TemporaryFile()) for _ in parts[1:]]
        except BaseException:  # no thread will run them: their sessions end here
            for part in parts:
                part.close()
            raise
        threads = [
            threading.Thread(target=run, args=(i, t), name="egress-part", daemon=True)
            for i, t in enumerate(targets)
        ]
        for thread in threads:
            thread.start()
        try:
            with control.awaiting_source():
                threads[0].join()
                # Each later part is appended while it is still being written: only what is
                # left of the last one is copied once every part is done.
                for spill, finished in zip(targets[1:], done[1:], strict=True):
                    _follow(spill, finished, failed, out)
        except BaseException:  # ``out`` failed: the parts stop at their next report
            failed.set()
            raise
        finally:
            with control.awaiting_source():
                for thread in threads:
                    thread.join()
        if errors:
            raise errors[0]
        control.checkpoint()
    return sum(counts)


def _follow(
    spill: BinaryIO, finished: threading.Event, failed: threading.Event, out: BinaryIO
) -> None:
    """Copy ``spill`` into ``out`` as its part writes it, until the part has finished (or
    any part failed). Reads at offsets of its own: the writer's file position is its own."""
    fd, offset = spill.fileno(), 0
    while not failed.is_set():
        was_finished = finished.is_set()  # set after the part's last flush
        chunk = os.pread(fd, COPY_BLOCK_BYTES, offset)
        if chunk:
            out.write(chunk)
            offset += len(chunk)
        elif was_finished:
            return
        else:
            finished.wait(FOLLOW_WAIT_S)


def _encode(
    batches: Iterator[pa.RecordBatch],
    fmt: str,
    schema: pa.Schema,
    batch_bytes: int,
    out: BinaryIO,
    first: bool,
    on_progress: ProgressFn,
) -> int:
    """One partition's batches through the format's writer (CSV's header only in the first
    part), none over the byte bound."""
    writer = CsvWriter(out, schema, header=first) if fmt == "csv" else WRITERS[fmt](out, schema)
    rows = 0
    for batch in batches:
        for piece in byte_slices(batch, batch_bytes):
            writer.write(piece)
            rows += piece.num_rows
            on_progress(rows)
    writer.close()
    return rows


def _close(stream: Iterator[pa.RecordBatch]) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()
