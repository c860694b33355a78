"""The retry policy (backoff with jitter) and which failures are transient (issue 14 item 6)."""

from __future__ import annotations

import errno
import sqlite3
import tempfile
from datetime import timedelta
from pathlib import Path

import adbc_driver_manager
import psycopg
import pymysql
import pytest
from obstore.exceptions import GenericError, NotFoundError

from egress.domain.retry import Backoff
from egress.engine.faults import is_transient
from egress.sources.base import (
    AUTHENTICATION_FAILED,
    COULD_NOT_CONNECT,
    DATABASE_NOT_FOUND,
    TIMED_OUT,
    ConnectFailed,
    QueryError,
    SourceError,
)


def test_backoff_doubles_per_attempt_up_to_the_maximum_with_equal_jitter() -> None:
    backoff = Backoff(base_s=2, max_s=30)
    lowest = [backoff.delay(n, lambda: 0.0) for n in range(1, 7)]
    highest = [backoff.delay(n, lambda: 1.0) for n in range(1, 7)]
    assert [d.total_seconds() for d in lowest] == [1, 2, 4, 8, 15, 15]
    assert [d.total_seconds() for d in highest] == [2, 4, 8, 16, 30, 30]
    assert backoff.delay(3, lambda: 0.5) == timedelta(seconds=6)
    assert backoff.delay(10_000, lambda: 1.0) == timedelta(seconds=30)  # no overflow


def _from(cause: BaseException, outer: Exception | None = None) -> Exception:
    error = outer or SourceError(str(cause))
    error.__cause__ = cause
    return error


def _adbc(sqlstate: str | None, status: adbc_driver_manager.AdbcStatusCode) -> Exception:
    return adbc_driver_manager.OperationalError(
        "x", status_code=status, vendor_code=None, sqlstate=sqlstate
    )


TRANSIENT = {
    "refused": ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
    "reset": ConnectionResetError(errno.ECONNRESET, "reset"),
    "timeout": TimeoutError("timed out"),
    "unreachable": OSError(errno.EHOSTUNREACH, "No route to host"),
    "pg-connection-lost": psycopg.OperationalError("server closed the connection"),
    "pg-serialization": psycopg.errors.SerializationFailure("could not serialize"),
    "pg-deadlock": psycopg.errors.DeadlockDetected("deadlock detected"),
    "pg-lock-timeout": psycopg.errors.LockNotAvailable("lock timeout"),
    "pg-admin-shutdown": psycopg.errors.AdminShutdown("terminating connection"),
    "pg-too-many": psycopg.errors.TooManyConnections("too many clients"),
    "adbc-serialization": _adbc("40001", adbc_driver_manager.AdbcStatusCode.IO),
    "adbc-connection-lost": _adbc(None, adbc_driver_manager.AdbcStatusCode.IO),
    "mysql-deadlock": pymysql.err.OperationalError(1213, "Deadlock found"),
    "mysql-lock-wait": pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"),
    "mysql-lost": pymysql.err.OperationalError(2013, "Lost connection to MySQL server"),
    "mysql-gone": pymysql.err.OperationalError(2006, "MySQL server has gone away"),
    "s3-503": GenericError("Server returned non-2xx status code: 503 Service Unavailable"),
    "s3-slowdown": GenericError("Client error with status 429: SlowDown"),
    "pyarrow-s3": OSError("AWS Error SLOW_DOWN during GetObject operation: Please reduce"),
    "connect-refused": ConnectFailed(COULD_NOT_CONNECT),
    "connect-timeout": ConnectFailed(TIMED_OUT),
}
TERMINAL = {
    "pg-syntax": psycopg.errors.SyntaxError("syntax error at or near"),
    "pg-missing-table": psycopg.errors.UndefinedTable('relation "t" does not exist'),
    "pg-permission": psycopg.errors.InsufficientPrivilege("permission denied for table t"),
    "pg-type": psycopg.errors.InvalidTextRepresentation("invalid input syntax for integer"),
    "adbc-missing-table": _adbc("42P01", adbc_driver_manager.AdbcStatusCode.NOT_FOUND),
    "mysql-missing-table": pymysql.err.ProgrammingError(1146, "Table 'd.t' doesn't exist"),
    "mysql-denied": pymysql.err.OperationalError(1142, "SELECT command denied"),
    "sqlite-missing-table": sqlite3.OperationalError("no such table: t"),
    "file-missing": FileNotFoundError(errno.ENOENT, "No such file"),
    "permission": PermissionError(errno.EACCES, "Permission denied"),
    "s3-missing": NotFoundError("Object at location x not found"),
    "s3-404": GenericError("Client error with status 404 Not Found"),
    "type-error": TypeError("unsupported type"),
    "value-error": ValueError("bad value"),
    "auth": ConnectFailed(AUTHENTICATION_FAILED),
    "no-database": ConnectFailed(DATABASE_NOT_FOUND),
}


def _sqlite_busy() -> sqlite3.OperationalError:
    """A real SQLITE_BUSY (the error code is set only by SQLite itself)."""
    path = Path(tempfile.mkdtemp()) / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        sqlite3.connect(path, timeout=0).execute("SELECT * FROM t")
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        holder.execute("ROLLBACK")
    raise AssertionError("no SQLITE_BUSY")


TRANSIENT["sqlite-busy"] = _sqlite_busy()


@pytest.mark.parametrize("name", sorted(TRANSIENT))
def test_transient_failures_raw_and_as_a_source_reports_them(name: str) -> None:
    exc = TRANSIENT[name]
    assert is_transient(exc)
    if not isinstance(exc, ConnectFailed):
        assert is_transient(_from(exc))
        assert is_transient(_from(exc, QueryError("the source's message")))


@pytest.mark.parametrize("name", sorted(TERMINAL))
def test_terminal_failures_raw_and_as_a_source_reports_them(name: str) -> None:
    exc = TERMINAL[name]
    assert not is_transient(exc)
    assert not is_transient(_from(exc))


def test_a_connect_failure_is_judged_by_its_class_not_by_the_driver_error_behind_it() -> None:
    # Authentication fails over a connection that was opened and then closed by the server.
    closed = psycopg.OperationalError("server closed the connection")
    assert not is_transient(_from(closed, ConnectFailed(AUTHENTICATION_FAILED)))
    assert is_transient(_from(closed, ConnectFailed(COULD_NOT_CONNECT)))
