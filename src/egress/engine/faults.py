"""Which failures of a run are transient (another attempt may succeed) and which are terminal.

Decided in one place from what the drivers and the store raise, so no source module has to:
sources keep the driver's exception as the ``__cause__`` of their SourceError, and this module
reads the whole chain. Transient: a connection refused, reset or lost; a deadlock or
serialization failure; a lock or statement timeout; a server shutting down or full of
connections; an object store's 5xx or throttling. Everything else (bad SQL, a missing table or
column, a value that does not fit its type, permission denied, bad credentials) is terminal:
trying again would fail the same way.
"""

from __future__ import annotations

import errno
import re
import sqlite3
from collections.abc import Iterator

import adbc_driver_manager
import psycopg
import pyarrow as pa
import pymysql
from obstore.exceptions import GenericError

from egress.engine.job import RunFailure
from egress.sources.base import COULD_NOT_CONNECT, TIMED_OUT, ConnectFailed, SourceError
from egress.storage import STORAGE_ERRORS, error_text


class TransientFailure(Exception):
    """This attempt failed for a transient reason (the message says which): try again later."""


# PostgreSQL SQLSTATEs (also ADBC's): the connection, a serialization failure or deadlock, a
# lock or statement timeout, a server shutting down or out of connection slots.
_TRANSIENT_SQLSTATE_CLASSES = ("08",)
_TRANSIENT_SQLSTATES = frozenset(
    {"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "53300"}
)
# MySQL error numbers: lock wait timeout, deadlock, too many connections, shutdown in progress,
# connection killed, statement time limit, and the client's can't-connect / gone / lost.
_TRANSIENT_MYSQL = frozenset({1205, 1213, 1040, 1053, 1927, 3024, 4031, 2002, 2003, 2006, 2013})
# SQLite: the database is busy or a table locked by another connection.
_TRANSIENT_SQLITE = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})
# OS errors of an unreachable or silent network (ConnectionError covers refused and reset).
_TRANSIENT_ERRNOS = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.ETIMEDOUT}
)
# Object stores, as obstore and pyarrow's S3 filesystem word them: a 5xx or 429 status,
# throttling, a request that timed out or could not be sent.
_TRANSIENT_STORE_TEXT = re.compile(
    r"status[^0-9\n]{0,20}\b(5\d\d|429)\b|slow ?down|throttl|timed? ?out|error sending request"
    r"|connection (refused|reset|closed)|AWS Error (NETWORK_CONNECTION|SLOW_DOWN|"
    r"SERVICE_UNAVAILABLE|INTERNAL_FAILURE|THROTTLING|REQUEST_TIMEOUT)",
    re.IGNORECASE,
)


_STORE_OS_ERROR = re.compile(r"AWS Error|^Generic \w+ error: ")


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is a failure another attempt may not meet."""
    for link in _chain(exc):
        if isinstance(link, ConnectFailed):  # its message is the class of the failure
            return str(link) in (COULD_NOT_CONNECT, TIMED_OUT)
        if _transient(link):
            return True
    return False


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, TransientFailure):  # the engine's own word for it
        return True
    if isinstance(exc, psycopg.Error):
        # No SQLSTATE: the client lost the connection (closed, reset, consuming input failed).
        return (
            _transient_sqlstate(exc.sqlstate)
            if exc.sqlstate
            else isinstance(exc, psycopg.OperationalError)
        )
    if isinstance(exc, adbc_driver_manager.Error):
        if exc.sqlstate and exc.sqlstate != "00000":
            return _transient_sqlstate(exc.sqlstate)
        return exc.status_code in (
            adbc_driver_manager.AdbcStatusCode.IO,
            adbc_driver_manager.AdbcStatusCode.TIMEOUT,
        )
    if isinstance(exc, pymysql.Error):
        return bool(exc.args) and exc.args[0] in _TRANSIENT_MYSQL
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorname", None) in _TRANSIENT_SQLITE
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if isinstance(exc, GenericError):
        return bool(_TRANSIENT_STORE_TEXT.search(str(exc)))
    if isinstance(exc, OSError):
        # pyarrow's S3 filesystem ("AWS Error …"), and obstore's writer, which raises a plain
        # OSError with the store's words when an upload fails ("Generic S3 error: …").
        store = _STORE_OS_ERROR.search(str(exc)) is not None
        return exc.errno in _TRANSIENT_ERRNOS or (
            store and bool(_TRANSIENT_STORE_TEXT.search(str(exc)))
        )
    return False


def _transient_sqlstate(sqlstate: str) -> bool:
    return sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith(_TRANSIENT_SQLSTATE_CLASSES)


def failure_message(exc: BaseException) -> str:
    """What a failed run says: the error's own words where they are meant for users."""
    if isinstance(exc, SourceError | RunFailure | TransientFailure | ValueError):
        return str(exc)
    if isinstance(exc, pa.ArrowException):
        return f"data conversion failed: {exc}"
    if isinstance(exc, STORAGE_ERRORS):
        return f"storage error: {error_text(exc)}"
    return f"internal error ({type(exc).__name__}): {exc}"
