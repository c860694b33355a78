"""Imported first by ``run_timeline.py``'s `egress serve` (server and forked worker): wraps the
steps of a run (trigger, claim, source open, estimate, COPY, sink close, publish, finish, the
status reads) so that each appends its start and end wall-clock time to the file named by
EGRESS_TIMELINE. Bench-only instrumentation: nothing in ``src`` knows about it."""

from __future__ import annotations

import functools
import os
import threading
import time
from typing import Any

_PATH = os.environ["EGRESS_TIMELINE"]


def _emit(name: str, start: float, end: float) -> None:
    line = f"{start:.6f} {end:.6f} {os.getpid()} {threading.current_thread().name} {name}\n"
    fd = os.open(_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _wrap(owner: Any, attr: str, name: str, only_if: Any = None) -> None:
    inner = getattr(owner, attr)

    @functools.wraps(inner)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.time()
        result = inner(*args, **kwargs)
        if only_if is None or only_if(result):
            _emit(name, start, time.time())
        return result

    setattr(owner, attr, timed)


def install() -> None:
    from egress.db.run_queue import RunQueue
    from egress.engine import parts, runner
    from egress.engine import publish as publish_mod
    from egress.services.executions import ExecutionService
    from egress.sinks.file import FileSink
    from egress.sources.postgresql import copy_parts
    from egress.sources.postgresql import source as pg_source
    from egress.sources.postgresql.source import PostgresSource
    from egress.storage import Storage

    _wrap(ExecutionService, "trigger", "api.trigger")
    _wrap(ExecutionService, "get", "api.get")
    _wrap(RunQueue, "claim", "claim", only_if=lambda r: r is not None)
    _wrap(RunQueue, "heartbeat", "heartbeat")
    _wrap(RunQueue, "mark_publishing", "publish.mark_publishing")
    _wrap(RunQueue, "finish", "finish (outcome recorded)")
    _wrap(runner.Runner, "execute", "execute")
    _wrap(runner.Runner, "_open_source", "open source")
    _wrap(runner, "with_parallelism", "with_parallelism")
    _wrap(runner, "with_window", "with_window")
    _wrap(runner.Runner, "_estimate", "estimate")
    _wrap(runner.Runner, "_write", "write (read + file)")
    _wrap(runner, "write_parted", "write_parted")
    _wrap(PostgresSource, "copy_rows", "copy_rows")
    _wrap(PostgresSource, "copy_partitions", "copy_partitions (sessions, snapshot)")
    _wrap(pg_source, "copy_rendered", "copy_out loop")
    _wrap(copy_parts, "_copy", "part's COPY")
    _wrap(parts, "_follow", "follower: a spill appended to the file")
    _wrap(FileSink, "__init__", "sink open")
    _wrap(FileSink, "close", "sink close")
    _wrap(runner, "publish", "publish")
    _wrap(publish_mod, "final_names", "publish.final_names")
    _wrap(Storage, "publish", "publish.rename")
    _wrap(Storage, "put", "publish.manifest put")
    _wrap(Storage, "delete_prefix", "delete tmp prefix")
    _wrap(PostgresSource, "close", "source close")


install()
