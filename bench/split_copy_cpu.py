"""Client and server CPU of a split CSV's one COPY against the unsplit COPY of the same rows:
extract_throughput.py's ``orders`` table (run that first, with the same EGRESS_BENCH_DB), its
12 columns in Egress's rendering, split by ``region`` (8 values), read in this process by the
code the worker runs (``copy_out`` and ``copy_split``) into streams that discard what they get,
so that files, hashing and the service are left out; with ``--files``, into the files the
runner writes instead (``FileSink``s of a local ``Storage`` in a scratch folder, the runner's
buffer sizes: one file, or one part per value), hashing and storage writes included. Client
CPU is this process's (user+sys), server CPU the backend's (/proc); the two reads alternate,
``--rounds`` times. Run it with each checkout's sources first on the path to compare them:

    EGRESS_BENCH_DB=egress_bench_b PYTHONPATH=src .venv/bin/python bench/split_copy_cpu.py [--files]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

import psycopg

from copy_render_cpu import ORDERS, _cpu_s
from egress.domain.catalog import TableRef
from egress.domain.plan import ReadPlan
from egress.engine.runner import FILE_BUFFER_BYTES, PART_BUFFER_BYTES
from egress.query.select import ColumnSql, select_statement
from egress.sinks.file import FileSink
from egress.sources.arrow_types import arrow_schema
from egress.sources.postgresql.columns import copy_sql, force_quote
from egress.sources.postgresql.copy_out import copy_out
from egress.sources.postgresql.copy_split import copy_split
from egress.storage import Storage
from serving import scratch_dir

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


class Discard(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        return memoryview(data).nbytes  # type: ignore[arg-type]


PLAN = ReadPlan(TableRef("public", "orders"), ORDERS)


def select(column_sql: ColumnSql) -> str:
    return select_statement(PLAN, "postgres", column_sql).sql


class Files:
    """The streams the runner writes into, on a local folder: FileSinks with its buffers (or,
    without a folder, streams that discard)."""

    def __init__(self, folder: Path | None) -> None:
        self._storage = Storage(folder.as_uri()) if folder else None
        self._streams: dict[str | None, BinaryIO] = {}
        self._sinks: list[FileSink] = []

    def open(self, value: str | None, buffer_bytes: int) -> BinaryIO:
        if value not in self._streams:
            if self._storage is None:
                self._streams[value] = Discard()  # type: ignore[assignment]
            else:
                key, schema = f"t/{value}.csv", arrow_schema(ORDERS)
                sink = FileSink(self._storage, key, "csv", "none", schema, buffer_bytes, key)
                self._sinks.append(sink)
                self._streams[value] = sink.stream
        return self._streams[value]

    def close(self) -> None:
        for sink in self._sinks:
            sink.close(0)


def _read(conn: psycopg.Connection[object], split: bool, folder: Path | None) -> None:
    files = Files(folder)
    if split:
        output = [f.name for f in ORDERS]
        copy_split(
            conn,
            select,
            PLAN,
            "region",
            output,
            lambda v: files.open(v, PART_BUFFER_BYTES),
            lambda _rows: None,
        )
    else:
        statement = f"COPY ({select(copy_sql)}) TO STDOUT WITH (FORMAT csv{force_quote(PLAN)})"
        copy_out(conn, statement, files.open(None, FILE_BUFFER_BYTES), lambda _rows: None)
    files.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", action="store_true", help="write the runner's files")
    args = parser.parse_args()
    scratch = scratch_dir("egress-split-cpu-") if args.files else None
    url = ADMIN.rsplit("/", 1)[0] + "/" + os.environ.get("EGRESS_BENCH_DB", "egress_bench")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("SET DateStyle = 'ISO, YMD'")
        pid = conn.info.backend_pid
        select(copy_sql)  # sqlglot's first statement costs ~0.2 s: not the read's
        for _ in range(args.rounds):  # alternating: a shared machine's load moves
            for split in (False, True):
                folder = Path(tempfile.mkdtemp(dir=scratch)) if scratch else None
                server, client, started = _cpu_s(pid), os.times(), time.monotonic()
                _read(conn, split, folder)
                wall, spent = time.monotonic() - started, os.times()
                own = spent.user - client.user + spent.system - client.system
                print(
                    f"{'split by region' if split else 'unsplit':16} wall {wall:5.2f} s"
                    f"  client CPU {own:5.2f} s  server CPU {_cpu_s(pid) - server:5.2f} s"
                    f"  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                if folder:
                    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
