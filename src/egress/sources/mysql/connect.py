"""MySQL connection failures as generic classes, least-privilege warnings, the server's
statement limits, and a driver's message in the user's words."""

from __future__ import annotations

import ssl
import struct
from typing import Any

import pymysql
import pymysql.cursors

from egress.sources import base

# "Query execution was interrupted": MariaDB's max_statement_time, MySQL's max_execution_time.
STATEMENT_TIMEOUT = 1969
EXECUTION_TIMEOUT = 3024


# The socket limit of interactive calls waits this much longer than the server's own statement
# limit, so a slow query is reported by the server, clearly, and the socket limit only catches
# a server that stopped answering.
SERVER_LIMIT_GRACE_S = 2.0
# Client error codes: the server's address cannot be reached, or went away; TLS failed.
_CANNOT_CONNECT = (2002, 2003, 2005, 2006, 2013)
_SSL_ERROR = 2026
_ACCESS_DENIED = (1044, 1045, 1698, 1251, 2059, 2061)
_UNKNOWN_DATABASE = 1049
# What PyMySQL raises when the peer's bytes are not the MySQL protocol at all.
GARBLED = (pymysql.err.InternalError, struct.error, IndexError, UnicodeError, ValueError)
NOT_MYSQL = "not a MySQL server"
BAD_SSL_CA = "ssl_ca is not a readable CA certificate file"
# A CA bundle is kilobytes; the system bundle is about 200 KiB.
MAX_SSL_CA_BYTES = 4 * 1024 * 1024
SUPERUSER_WARNING = (
    "the connection's user has SUPER (or ALL) privileges: give Egress a least-privilege,"
    " read-only user"
)
WRITER_WARNING = (
    "the connection's user can write (INSERT, UPDATE, DELETE or CREATE privileges):"
    " give Egress a least-privilege, read-only user"
)


def connect_error_class(exc: BaseException) -> str:
    """The generic class of a failure while PyMySQL connects and logs in."""
    if isinstance(exc, GARBLED):
        return NOT_MYSQL
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    text = str(exc).lower()
    if code in _ACCESS_DENIED:
        return base.AUTHENTICATION_FAILED
    if code == _UNKNOWN_DATABASE:
        return base.DATABASE_NOT_FOUND
    if code == _SSL_ERROR or isinstance(exc, ssl.SSLError):
        return base.TLS_FAILED
    if "timed out" in text or isinstance(exc, TimeoutError):
        return base.TIMED_OUT
    if code in _CANNOT_CONNECT or isinstance(exc, OSError):
        return base.COULD_NOT_CONNECT
    # A server error before login is complete that is none of the above: a MySQL server
    # would not send it, so it is something else answering.
    return NOT_MYSQL


def limit_statements(cur: Any, seconds: float) -> None:
    """The server stops this session's statements after ``seconds``."""
    try:  # MariaDB's limit, in seconds (MySQL's max_execution_time covers SELECTs only)
        cur.execute("SET SESSION max_statement_time = %s", (seconds,))
    except pymysql.Error:
        cur.execute("SET SESSION max_execution_time = %s", (int(seconds * 1000),))


def clean_error(exc: BaseException) -> str:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) == 2 and isinstance(args[1], str):
        return f"{args[1]} (MySQL error {args[0]})"
    return str(exc) or type(exc).__name__
