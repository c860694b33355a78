"""PostgreSQL connection failures as generic classes, least-privilege warnings, and the
helper for a driver's message."""

from __future__ import annotations

import psycopg

from egress.sources import base

# libpq's words for a peer that is not a PostgreSQL server at all.
_NOT_POSTGRES = (
    "expected authentication request",
    "invalid response to ssl negotiation",
    "invalid response to gssapi negotiation",
    "unexpected message from server",
    "invalid length of startup packet",
)
_AUTH = ("authentication failed", "no password supplied", "pg_hba.conf", 'role "')


def connect_error_class(exc: BaseException) -> str:
    """The generic class of a libpq connection failure (psycopg's or ADBC's wording)."""
    # The reason follows the last "…, port N failed:" (the text before names the host).
    reason = str(exc).lower().rsplit("failed:", 1)[-1]
    if isinstance(exc, psycopg.errors.ConnectionTimeout) or "timeout expired" in reason:
        return base.TIMED_OUT
    if any(words in reason for words in _NOT_POSTGRES):
        return NOT_POSTGRES
    if 'database "' in reason and "does not exist" in reason:
        return base.DATABASE_NOT_FOUND
    if any(words in reason for words in _AUTH):
        return base.AUTHENTICATION_FAILED
    if "ssl" in reason or "certificate" in reason:
        return base.TLS_FAILED
    return base.COULD_NOT_CONNECT


NOT_POSTGRES = "not a PostgreSQL server"
SUPERUSER_WARNING = (
    "the connection's user is a superuser: give Egress a least-privilege, read-only role"
)
WRITER_WARNING = (
    "the connection's user can write (INSERT, UPDATE or DELETE on a table, or CREATE on the"
    " database or a schema): give Egress a least-privilege, read-only role"
)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
