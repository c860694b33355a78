"""An in-process cache of execution details, the read behind every status poll.

A client polls an execution many times between two changes of it, and each read cost far
more than answering it (SQLAlchemy's connection and transaction around the query, on
PostgreSQL a round trip and a hop to a thread). The cache keeps what the last read returned,
with the metadata database's version (``changes.MetadataVersion``) taken *before* that read,
and serves it while the version is unchanged: any committed write — this process's or
another's — moves the version, so a poll never sees less than a read would have shown after
that write (a cancel through the API shows on the very next poll). It also serves nothing
older than ``MAX_AGE_S``, the bound for writes that bypass Egress (``psql`` by hand on
PostgreSQL). It is off (every read goes to the database) until the API attaches a version,
and while the version is unknown.

Keys are (workspace, configuration, execution): another workspace's caller never hits an
entry, and the caller's role is checked on every request before the cache is asked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from egress.db.changes import MetadataVersion
from egress.db.execution_records import ExecutionRecord

MAX_AGE_S = 1.0
MAX_ENTRIES = 4096  # executions polled at once; past it the oldest entry goes

Key = tuple[str, str, str]
Read = Callable[[str, str, str], ExecutionRecord]


class DetailsCache:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._version: MetadataVersion | None = None
        # key -> (version before the read, when it was read, what it returned)
        self._entries: dict[Key, tuple[object, float, ExecutionRecord]] = {}
        self._lock = threading.Lock()

    def attach(self, version: MetadataVersion) -> None:
        self._version = version

    def detach(self) -> None:
        version, self._version = self._version, None
        with self._lock:
            self._entries.clear()
        if version is not None:
            version.close()

    def version(self) -> object | None:
        """The metadata database's change version now (None: unknown, or not attached)."""
        version = self._version
        return version.current() if version is not None else None

    def cached(
        self, workspace_id: str, configuration_id: str, execution_id: str
    ) -> ExecutionRecord | None:
        """The details from memory if they are still current, else None (no database read)."""
        version = self._version
        now = version.current() if version is not None else None
        if now is None:
            return None
        entry = self._entries.get((workspace_id, configuration_id, execution_id))
        if entry is None or entry[0] != now or self._monotonic() - entry[1] > MAX_AGE_S:
            return None
        return entry[2]

    def get(
        self, read: Read, workspace_id: str, configuration_id: str, execution_id: str
    ) -> ExecutionRecord:
        """The details, from memory when current, else by ``read`` (and remembered)."""
        found = self.cached(workspace_id, configuration_id, execution_id)
        if found is not None:
            return found
        version = self._version
        before = version.current() if version is not None else None
        at = self._monotonic()
        record = read(workspace_id, configuration_id, execution_id)
        if before is not None:
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    del self._entries[next(iter(self._entries))]
                self._entries[(workspace_id, configuration_id, execution_id)] = (
                    before,
                    at,
                    record,
                )
        return record
