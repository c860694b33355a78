"""The one protocol every connector implements."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, BinaryIO, Protocol, runtime_checkable
from urllib.parse import quote

import pyarrow as pa

from egress.domain.catalog import ColumnInfo, TableInfo
from egress.domain.incremental import ServerClock
from egress.domain.plan import ReadPlan
from egress.sources.policy import HostDenied, HostUnresolved, SourcePolicy, server_addresses
from egress.sources.session_cache import SessionCache

log = logging.getLogger("egress.sources")


class SourceError(Exception):
    """A problem with the source a user can act on (the driver's message, cleaned up)."""


class QueryError(SourceError):
    """The source was reached but refused the query itself (bad SQL, unknown table, …)."""


class ConnectFailed(SourceError):
    """Connecting failed. The message is only one of the generic classes below: what a
    foreign service or a driver said about a tenant-chosen address (a banner, a greeting's
    first bytes, whether a name resolves) must not reach the client; the server log has it."""


# The classes of connection failure a client is told (README "Security model").
COULD_NOT_CONNECT = "could not connect"
TIMED_OUT = "timed out"
AUTHENTICATION_FAILED = "authentication failed"
DATABASE_NOT_FOUND = "database not found"  # only said after the server accepted the user
TLS_FAILED = "TLS failed"
HOST_NOT_ALLOWED = "host not allowed"


def connect_failed(kind: str, where: str, detail: str, secret: str | None) -> ConnectFailed:
    """The client's generic error; the driver's full text goes to the log, the secret masked
    in every spelling a driver might echo (plain or URL-quoted)."""
    if secret:
        for spelling in (secret, quote(secret, safe="")):
            detail = detail.replace(spelling, "***")
    log.warning("connecting to %s failed (%s): %s", where, kind, detail.strip())
    return ConnectFailed(kind)


def server_addresses_or_fail(
    host: str, port: int, database: str, policy: SourcePolicy, failed: FailFn
) -> list[str]:
    """The checked addresses of a database server, or the generic failure a client may see."""
    try:
        return server_addresses(host, port, database, policy)
    except HostUnresolved as exc:
        raise failed(COULD_NOT_CONNECT, exc) from exc
    except HostDenied as exc:
        raise failed(HOST_NOT_ALLOWED, exc) from exc


class FailFn(Protocol):
    def __call__(self, kind: str, detail: object) -> ConnectFailed: ...


def clean(exc: BaseException) -> str:
    """A driver's message on one line (or the exception's class when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


# Describing a SQL template runs its LIMIT 0 probe inside an API request: a query that makes
# even that slow (a sleep, a function over a huge table) is refused rather than holding it.
PROBE_TIMEOUT_S = 30.0


def probe_limit_s(read_timeout_s: float | None) -> float:
    """The probe's limit: PROBE_TIMEOUT_S, or the interactive read timeout when shorter."""
    return min(PROBE_TIMEOUT_S, read_timeout_s or PROBE_TIMEOUT_S)


def probe_too_slow(limit_s: float | None = None) -> str:
    limit = PROBE_TIMEOUT_S if limit_s is None else limit_s
    return f"the query did not return its columns within {limit:g} s (LIMIT 0 probe)"


class Source(Protocol):
    def check(self) -> None:
        """Connect and run a trivial query; raise SourceError with the driver's message."""

    def catalog(self) -> list[TableInfo]:
        """Every readable table and view with its columns and primary key."""

    def read(
        self, plan: ReadPlan, batch_rows: int, batch_bytes: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Stream the plan's rows as batches conforming to ``arrow_schema(plan.fields)``, each
        of at most ``batch_rows`` rows and (roughly, when given) ``batch_bytes`` bytes."""

    def max_value(self, plan: ReadPlan, field: str) -> Any:
        """The largest value of ``field`` now (an incremental run's high-water mark)."""

    def close(self) -> None: ...

    def interrupt(self) -> None:
        """Make the driver call in flight on another thread return (with an error) soon, and
        every later call fail: called by the run's watchdog on cancel, stall or shutdown."""


INTERRUPTED = "the source call was interrupted"


class OpenCalls:
    """How to stop each driver call a source has open (a connection, a cursor), so another
    thread can interrupt the one in flight. A source object lives for one run or one request,
    so stoppers are kept until it goes; each must tolerate a handle already closed."""

    def __init__(self) -> None:
        self._stoppers: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._interrupted = False

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def track(self, stop: Callable[[], None]) -> None:
        """Register a handle just opened; once interrupted, it is stopped and refused."""
        with self._lock:
            if not self._interrupted:
                self._stoppers.append(stop)
                return
        _quietly(stop)
        raise SourceError(INTERRUPTED)

    def check(self) -> None:
        """Between batches: a source with nothing to stop (files) ends here."""
        if self._interrupted:
            raise SourceError(INTERRUPTED)

    def forget(self) -> None:
        """The handles went on to another run (a reused session): an interrupt of this
        source, which may still come for a run that just ended, must not stop them."""
        with self._lock:
            self._stoppers.clear()

    def interrupt(self) -> None:
        with self._lock:
            self._interrupted = True
            stoppers = list(self._stoppers)
        for stop in stoppers:
            _quietly(stop)


def _quietly(stop: Callable[[], None]) -> None:
    try:
        stop()
    except Exception:  # closed meanwhile, or the server is gone: nothing left to stop
        log.debug("interrupting a source call failed", exc_info=True)


def in_background(call: Callable[[], object]) -> None:
    """A driver's cancel that asks the server over a connection of its own: the server itself
    may hang, so the caller (an interrupt) must not wait for it."""

    def run() -> None:
        try:
            call()
        except Exception:  # the connection ended meanwhile, or the server is unreachable
            log.debug("cancelling a source's query failed", exc_info=True)

    threading.Thread(target=run, name="source-cancel", daemon=True).start()


@dataclass(frozen=True)
class SocketRef:
    """A driver's socket by descriptor and by its two ends: shutting it down later must never
    hit another socket that reused the descriptor after the driver closed its own."""

    fd: int
    ends: tuple[Any, Any]

    @classmethod
    def of(cls, fd: int) -> SocketRef:
        with socket.socket(fileno=os.dup(fd)) as sock:
            return cls(fd, (sock.getsockname(), sock.getpeername()))

    def shutdown(self) -> None:
        """A read blocked on the socket returns at once, whatever the peer does (or not)."""
        with socket.socket(fileno=os.dup(self.fd)) as sock:
            if (sock.getsockname(), sock.getpeername()) == self.ends:
                sock.shutdown(socket.SHUT_RDWR)


@runtime_checkable
class Noticing(Protocol):
    """A source that notices what a run should report without failing for it (files: a file
    of a folder with a column the others lack, or without one the template has; a JSONL key
    the template lacks because it first appears after the first 1 MiB)."""

    def warnings(self) -> list[str]:
        """What the reads so far noticed, each naming the file and the column."""


@runtime_checkable
class CsvNullSpellings(Protocol):
    """A source of CSV files, whose column types depend on which texts mean NULL (files)."""

    def infer_columns(self, path: str, null_values: tuple[str, ...]) -> list[ColumnInfo]:
        """The columns of a file or folder inferred with ``null_values`` as NULL spellings."""


@runtime_checkable
class AccessAudit(Protocol):
    """A source whose user's privileges can be checked (database servers)."""

    def check_access(self) -> list[str]:
        """Like ``check``, and warnings when the user is a superuser or can write."""


@runtime_checkable
class QuerySource(Protocol):
    """A source that speaks SQL, so it can read a SQL template's query (files cannot)."""

    dialect: str  # sqlglot's name for the source's SQL, e.g. "postgres"

    def describe(self, query: str) -> list[ColumnInfo]:
        """The result columns of a checked query, from a ``LIMIT 0`` probe; QueryError when
        the source refuses the query."""


@dataclass(frozen=True)
class SnapshotMark:
    """Where an incremental run starts on a source with MVCC snapshots (PostgreSQL), read in the
    one transaction its rows are then read in."""

    high: Any  # the cursor's largest value visible in the snapshot
    snapshot: str  # the snapshot (pg_snapshot text; subtransactions in progress included)
    quiet: bool  # nothing was in progress: no row can commit later behind ``high``
    nulls: int | None = None  # records whose cursor is NULL in the snapshot (None: not counted)


@runtime_checkable
class SnapshotSource(Protocol):
    def begin_snapshot(self, plan: ReadPlan, field: str, *, by_copy: bool) -> SnapshotMark | None:
        """Open one snapshot transaction, read the mark in it and keep it for the next
        ``read`` (or ``copy_rows`` when asked); None when the plan's relation has no row
        versions to see (a view, a SQL template): the run falls back to the safety lag."""


@runtime_checkable
class CursorNullsSource(Protocol):
    """A source that counts, with each mark it reads, the records whose cursor is NULL: no
    incremental run takes them (a NULL is never past a watermark), and the run says how many."""

    def cursor_nulls(self) -> int | None:
        """The records with a NULL cursor when this source last read a mark (``max_value``,
        ``max_value_and_clock``, ``begin_snapshot``); None when it read none."""


@runtime_checkable
class OpenTransactionsSource(Protocol):
    """A source that can show its open transactions (MySQL/MariaDB with PROCESS)."""

    def max_value_and_clock(self, plan: ReadPlan, field: str) -> tuple[Any, ServerClock | None]:
        """``max_value``, then on the same connection the server's clock and the oldest open
        transaction's start (None when the user may not see them)."""


@runtime_checkable
class CollatingSource(Protocol):
    """A database: its text is ordered by the column's collation (MySQL's case-insensitive
    defaults, ``en_US``), not Python's code points, so which of two text marks is later is
    asked of it."""

    def later_text(self, plan: ReadPlan, field: str, value: str, current: str) -> bool:
        """Whether ``value`` sorts after ``current`` in ``field``'s own order (equal: no)."""


class Rendering(StrEnum):
    """What a source's own ``COPY`` writes (``CopyFastPath``)."""

    CSV = "csv"  # Egress's CSV: byte for byte what the Arrow path's writer writes
    POSTGRES_CSV = "postgres"  # csvDialect "postgres": the source's own CSV text
    JSONL = "jsonl"  # Egress's JSONL: byte for byte what the Arrow path's writer writes


@runtime_checkable
class KeysetSource(Protocol):
    """A source that can copy a keyset slice as CSV or JSONL and still tell where it ends
    (PostgreSQL): an export job then writes through its COPY."""

    def copy_keyset(
        self,
        plan: ReadPlan,
        out: BinaryIO,
        on_progress: ProgressFn,
        rendering: Rendering = Rendering.CSV,
    ) -> tuple[int, list[Any] | None, bool]:
        """Write the plan's ``limit`` rows after ``after`` (as ``CopyFastPath.copy_rows``) in
        one snapshot; the row count, the last row's key when ``limit`` rows were written (None:
        fewer remained), and whether any row follows it in that snapshot."""

    def can_copy(self, plan: ReadPlan, rendering: Rendering) -> bool: ...


# Why a source reads a parallel plan in one session (a run warning says so).
NO_PARTITION_KEY = "the template has no one-column integer primary key to cut into ranges"


@runtime_checkable
class PartitionedSource(Protocol):
    """A source that can read a plan in ``plan.parallelism`` sessions of one consistent
    snapshot, each a range of ``plan.partition_key`` (README "Parallel reads")."""

    def partition_blocker(self, plan: ReadPlan) -> str | None:
        """Why this plan must be read in one session (None: it can be partitioned)."""

    def read_partitions(
        self, plan: ReadPlan, batch_rows: int, batch_bytes: int | None = None
    ) -> list[Iterator[pa.RecordBatch]]:
        """The plan's rows as one stream per key range, the snapshot already shared by all
        (each stream may run on a thread of its own); together exactly ``read``'s rows."""


class CopyFastPath(Protocol):
    """A source that can write the plan's rows as CSV or JSONL itself, faster than through
    Arrow."""

    def can_copy(self, plan: ReadPlan, rendering: Rendering) -> bool:
        """Whether ``copy_rows`` renders every field of the plan exactly so."""

    def copy_rows(
        self,
        plan: ReadPlan,
        out: BinaryIO,
        on_progress: ProgressFn,
        rendering: Rendering = Rendering.CSV,
    ) -> int:
        """Write the rows (after a header, for CSV) as ``rendering`` says; return their count."""


class ProgressFn(Protocol):
    def __call__(self, processed: int) -> None: ...


@dataclass(frozen=True)
class FilePart:
    """One partition of a parallel read that writes its own part of the output file:
    ``write(out, first, on_progress)`` writes its rows' bytes (the header only when
    ``first``) and returns their count; ``close`` frees its session, written or not."""

    write: Callable[[BinaryIO, bool, ProgressFn], int]
    close: Callable[[], None]


class CopyPartitions(Protocol):
    """A ``CopyFastPath`` that also writes a parallel read's file itself, one part per key
    range in sessions of one snapshot."""

    def copy_partitions(self, plan: ReadPlan, rendering: Rendering) -> list[FilePart]:
        """The parts, in key order: their bytes concatenated are ``copy_rows``'s (rows in
        key-range order)."""


@runtime_checkable
class RowEstimates(Protocol):
    """A source whose planner estimates the rows a read returns, without reading them."""

    def estimate_rows(self, plan: ReadPlan) -> int | None:
        """About how many rows ``read(plan)`` returns; None when it cannot say."""


@runtime_checkable
class ReusesSessions(Protocol):
    """A source whose sessions can serve the next run of the same connection
    (``sources/session_cache.py``): it resets a session's state before reusing it."""

    def reuse_sessions(self, cache: SessionCache, owner: str) -> None:
        """Take idle sessions from ``cache`` (filed under ``owner``, a connection id, and the
        source's settings) and give them back at ``close`` while this run succeeds."""

    def drop_sessions(self) -> None:
        """The run failed or was cancelled: close its sessions instead of giving them back."""
