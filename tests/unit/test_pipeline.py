"""``sinks/pipeline``: batches encoded on threads, their bytes written in the order the batches
came (whatever order the encodings end in), an encoding's error raised to the writer, and
nothing written after it."""

from __future__ import annotations

import io
import os
import signal
import threading

import pyarrow as pa
import pytest

from egress.sinks.pipeline import IN_FLIGHT, Pipeline
from egress.sinks.writers import CsvWriter


def _batch(i: int) -> pa.RecordBatch:
    return pa.record_batch([pa.array([i])], names=["i"])


def test_bytes_are_written_in_the_order_the_batches_came() -> None:
    first_may_end = threading.Event()

    def encode(batch: pa.RecordBatch) -> bytes:
        i = batch.column(0)[0].as_py()
        if i == 0:  # the first encoding ends last
            assert first_may_end.wait(10)
        elif i == 1:
            first_may_end.set()
        return f"{i}\n".encode()

    out = io.BytesIO()
    pipeline = Pipeline(out, encode)
    for i in range(10):
        pipeline.write(_batch(i))
    pipeline.flush()
    assert out.getvalue() == b"".join(f"{i}\n".encode() for i in range(10))


def test_an_encoding_error_is_raised_and_nothing_after_it_is_written() -> None:
    def encode(batch: pa.RecordBatch) -> bytes:
        i = batch.column(0)[0].as_py()
        if i == 2:
            raise ValueError("column 'd' holds year 10000")
        return f"{i}\n".encode()

    out = io.BytesIO()
    pipeline = Pipeline(out, encode)
    with pytest.raises(ValueError, match="year 10000"):
        for i in range(10):
            pipeline.write(_batch(i))
        pipeline.flush()
    assert out.getvalue() == b"0\n1\n"
    pipeline.flush()  # nothing left queued: a later close writes nothing more
    assert out.getvalue() == b"0\n1\n"


def test_at_most_in_flight_batches_wait() -> None:
    started = threading.Semaphore(0)
    release = threading.Event()

    def encode(batch: pa.RecordBatch) -> bytes:
        started.release()
        assert release.wait(10)
        return b"x"

    out = io.BytesIO()
    pipeline = Pipeline(out, encode)
    for i in range(IN_FLIGHT):
        pipeline.write(_batch(i))  # queued, none written: the caller is not held up
    for _ in range(IN_FLIGHT):
        assert started.acquire(timeout=10)  # all of them are being encoded at once
    assert out.getvalue() == b""
    release.set()
    pipeline.write(_batch(IN_FLIGHT))  # one more than IN_FLIGHT: the oldest is written
    assert out.getvalue() == b"x"
    pipeline.flush()
    assert out.getvalue() == b"x" * (IN_FLIGHT + 1)


def test_a_forked_child_encodes_with_a_pool_of_its_own() -> None:
    # The worker process is forked from the API's: an inherited pool would have no threads.
    parent = Pipeline(io.BytesIO(), lambda batch: b"x")
    parent.write(_batch(0))
    parent.flush()  # the parent's pool has started its threads
    pid = os.fork()
    if pid == 0:  # the child: encode, and report by exit status (never run pytest's exit)
        signal.alarm(10)  # a pool without threads would wait forever: killed, it fails
        out = io.BytesIO()
        child = Pipeline(out, lambda batch: b"y")
        child.write(_batch(0))
        child.flush()
        os._exit(0 if out.getvalue() == b"y" else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_split_parts_csv_writer_holds_nothing_back_between_calls() -> None:
    # A split writes its parts in turns: a part's batches must not wait, encoded, in memory
    # while the other parts are written (CsvWriter(ahead=False), as FileSink opens a part's).
    out = io.BytesIO()
    writer = CsvWriter(out, pa.schema([("i", pa.int64())]), ahead=False)
    writer.write_many([_batch(1), _batch(2)])
    assert out.getvalue() == b'"i"\n1\n2\n'
    writer.write_many([_batch(3)])
    assert out.getvalue() == b'"i"\n1\n2\n3\n'
