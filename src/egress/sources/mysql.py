"""MySQL and MariaDB over PyMySQL with an unbuffered (server-side) cursor: rows stream in
batches, never a whole result in memory."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import struct
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, Literal

import pyarrow as pa
import pymysql
import pymysql.cursors
from pydantic import BaseModel, ConfigDict, Field
from pymysql.constants import FIELD_TYPE, FLAG

from egress.domain.catalog import ColumnInfo, TableInfo
from egress.domain.errors import Invalid
from egress.domain.incremental import ServerClock
from egress.domain.options import naive_utc
from egress.domain.plan import ReadPlan
from egress.domain.types import decimal_type
from egress.query.custom import probe_statement
from egress.query.select import max_statement, select_statement
from egress.sources import base, confine
from egress.sources.arrow_types import arrow_schema
from egress.sources.base import ConnectFailed, OpenCalls, QueryError, SocketRef, SourceError
from egress.sources.mysql_transactions import PROCESS_WARNING, server_clock
from egress.sources.policy import SourcePolicy, admit_server, connect_timeout_s
from egress.sources.rows import ColumnFix, bounded_rows, rows_to_batch

# "Query execution was interrupted": MariaDB's max_statement_time, MySQL's max_execution_time.
_STATEMENT_TIMEOUT = 1969
_EXECUTION_TIMEOUT = 3024
_SYSTEM = ("information_schema", "mysql", "performance_schema", "sys")

_CATALOG_SQL = """
SELECT c.TABLE_SCHEMA, c.TABLE_NAME, t.TABLE_TYPE, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE,
       c.NUMERIC_PRECISION, c.NUMERIC_SCALE, c.IS_NULLABLE, c.COLUMN_KEY
FROM information_schema.COLUMNS c
JOIN information_schema.TABLES t
  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
WHERE c.TABLE_SCHEMA = %s
ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION
"""
# MariaDB's JSON is LONGTEXT plus a CHECK (json_valid(`col`)) named after the column; MySQL's
# CHECK_CONSTRAINTS has no TABLE_NAME (its JSON is a type of its own), so this fails there.
_JSON_CHECKS_SQL = """
SELECT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = %s AND CHECK_CLAUSE = CONCAT('json_valid(`', CONSTRAINT_NAME, '`)')
"""
_PK_SQL = """
SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = %s AND CONSTRAINT_NAME = 'PRIMARY'
ORDER BY TABLE_NAME, ORDINAL_POSITION
"""


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
_GARBLED = (pymysql.err.InternalError, struct.error, IndexError, UnicodeError, ValueError)
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
_WRITES = {"INSERT", "UPDATE", "DELETE", "CREATE"}
# The current user's privileges at every level; information_schema lists other users' too
# when the user may read the grant tables, hence the GRANTEE filter.
_ACCESS_SQL = """
SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = %(g)s
UNION SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = %(g)s
UNION SELECT PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = %(g)s
"""


def connect_error_class(exc: BaseException) -> str:
    """The generic class of a failure while PyMySQL connects and logs in."""
    if isinstance(exc, _GARBLED):
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


class MysqlSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1)
    port: int = Field(default=3306, ge=1, le=65535)
    database: str = Field(min_length=1)
    user: str = Field(min_length=1)
    ssl: bool = Field(default=False, description="require TLS")
    ssl_ca: str | None = Field(default=None, description="CA bundle path to verify the server")
    connect_timeout: int = Field(default=10, ge=1, le=300)
    # camelCase: the names users type in the connection's settings
    tinyint1AsBoolean: bool = Field(
        default=True,
        description="TINYINT(1) is boolean (values other than 0/1 fail the run); false: int16",
    )
    zeroDates: Literal["null", "fail"] = Field(
        default="null",
        description="zero or invalid dates ('0000-00-00', '2026-02-30') are read as NULL or fail",
    )


_GEOMETRY = frozenset(
    {
        "geometry",
        "point",
        "linestring",
        "polygon",
        "multipoint",
        "multilinestring",
        "multipolygon",
        "geometrycollection",
        "geomcollection",
    }
)


def admit(settings: MysqlSettings, policy: SourcePolicy) -> None:
    """The server must be one a tenant may reach, and ``ssl_ca`` lie in a files root."""
    admit_server(settings.host, settings.port, settings.database, policy)
    if settings.ssl_ca is not None:
        try:
            confine.confined(confine.checked_spelling(settings.ssl_ca), policy)
        except confine.PathRefused as exc:
            raise Invalid.at(("body", "settings", "ssl_ca"), str(exc)) from exc


def logical_type(
    data_type: str,
    column_type: str,
    precision: int | None,
    scale: int | None,
    tinyint1_as_boolean: bool = True,
) -> str:
    t, full = data_type.lower(), column_type.lower()
    unsigned = "unsigned" in full
    if t == "tinyint" and full.startswith("tinyint(1)") and tinyint1_as_boolean:
        return "boolean"
    if t == "bit":
        return "boolean" if full == "bit(1)" else "int64"
    if t in ("tinyint", "smallint", "year"):
        return "int32" if unsigned and t == "smallint" else "int16"
    if t in ("mediumint", "int", "integer"):
        return "int64" if unsigned else "int32"
    if t == "bigint":
        return "decimal(20,0)" if unsigned else "int64"
    if t == "float":
        return "float32"
    if t in ("double", "real"):
        return "float64"
    if t in ("decimal", "numeric"):
        return decimal_type(precision or 10, scale or 0)
    if t == "date":
        return "date"
    if t == "time":
        return "duration"  # a signed span up to ±838:59:59, not a time of day
    if t == "datetime":
        return "timestamp"
    if t == "timestamp":
        return "timestamptz"  # stored in UTC; the session reads it in UTC
    if t == "json":
        return "json"
    if t in ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob") or t in _GEOMETRY:
        return "binary"  # geometries as standard WKB (the SRID prefix is dropped)
    return "string"  # char, varchar, text, enum, set, …


# Result-column type codes as information_schema's DATA_TYPE, so ``logical_type`` maps both.
_DATA_TYPES = {
    FIELD_TYPE.DECIMAL: "decimal",
    FIELD_TYPE.NEWDECIMAL: "decimal",
    FIELD_TYPE.TINY: "tinyint",
    FIELD_TYPE.SHORT: "smallint",
    FIELD_TYPE.INT24: "mediumint",
    FIELD_TYPE.LONG: "int",
    FIELD_TYPE.LONGLONG: "bigint",
    FIELD_TYPE.YEAR: "year",
    FIELD_TYPE.FLOAT: "float",
    FIELD_TYPE.DOUBLE: "double",
    FIELD_TYPE.BIT: "bit",
    FIELD_TYPE.DATE: "date",
    FIELD_TYPE.NEWDATE: "date",
    FIELD_TYPE.TIME: "time",
    FIELD_TYPE.DATETIME: "datetime",
    FIELD_TYPE.TIMESTAMP: "timestamp",
    FIELD_TYPE.JSON: "json",
}
# Strings and blobs share type codes; the binary character set tells bytes from text.
_BINARY_CHARSET = 63
_BYTES_OR_TEXT = {
    FIELD_TYPE.TINY_BLOB,
    FIELD_TYPE.MEDIUM_BLOB,
    FIELD_TYPE.LONG_BLOB,
    FIELD_TYPE.BLOB,
    FIELD_TYPE.VAR_STRING,
    FIELD_TYPE.STRING,
    FIELD_TYPE.VARCHAR,
    FIELD_TYPE.GEOMETRY,
}


def result_column(field: Any, tinyint1_as_boolean: bool = True) -> ColumnInfo:
    """A result column (PyMySQL's field descriptor) as a catalog column."""
    data_type = "geometry" if field.type_code == FIELD_TYPE.GEOMETRY else None
    data_type = data_type or _DATA_TYPES.get(field.type_code)
    if data_type is None:
        binary = field.type_code in _BYTES_OR_TEXT and field.charsetnr == _BINARY_CHARSET
        data_type = "blob" if binary else "text"
    # BIT(1) is a boolean whatever its flags say; COLUMN_TYPE never calls it unsigned.
    unsigned = " unsigned" if field.flags & FLAG.UNSIGNED and data_type != "bit" else ""
    precision = None
    if data_type == "decimal":  # the display length counts the sign and the decimal point
        precision = field.length - (1 if field.scale else 0) - (0 if unsigned else 1)
    column_type = f"{data_type}({field.length}){unsigned}"
    return ColumnInfo(
        field.name,
        logical_type(data_type, column_type, precision, field.scale, tinyint1_as_boolean),
        not field.flags & FLAG.NOT_NULL,
    )


_DATES = frozenset({FIELD_TYPE.DATE, FIELD_TYPE.NEWDATE, FIELD_TYPE.DATETIME, FIELD_TYPE.TIMESTAMP})


def _zero_dates(mode: str) -> ColumnFix:
    """PyMySQL hands out a date it cannot represent ('0000-00-00', '2026-02-30') as its text."""

    def fix(name: str, values: list[Any]) -> list[Any]:
        bad = next((v for v in values if isinstance(v, str)), None)
        if bad is None:
            return values
        if mode == "fail":
            raise SourceError(
                f"column {name!r} holds the zero or invalid date {bad!r}; set the connection's"
                ' zeroDates to "null" to read such dates as NULL'
            )
        return [None if isinstance(v, str) else v for v in values]

    return fix


def _strict_tinyint1(name: str, values: list[Any]) -> list[Any]:
    bad = next((v for v in values if v is not None and v not in (0, 1)), None)
    if bad is not None:
        raise SourceError(
            f"column {name!r} is TINYINT(1), read as boolean, but holds {bad}; set the"
            " connection's tinyint1AsBoolean to false to read it as an integer"
        )
    return values


def _wkb(name: str, values: list[Any]) -> list[Any]:
    """MySQL stores a geometry as a 4-byte SRID and standard WKB: keep the WKB."""
    return [None if v is None else bytes(v[4:]) for v in values]


def column_fixes(
    description: Any, fields: list[ColumnInfo], settings: MysqlSettings
) -> dict[int, ColumnFix]:
    """The per-column rules the result's type codes call for."""
    fixes: dict[int, ColumnFix] = {}
    for i, (desc, field) in enumerate(zip(description, fields, strict=True)):
        type_code = desc[1]
        if type_code in _DATES:
            fixes[i] = _zero_dates(settings.zeroDates)
        elif type_code == FIELD_TYPE.GEOMETRY:
            fixes[i] = _wkb
        elif type_code == FIELD_TYPE.TINY and field.type == "boolean":
            fixes[i] = _strict_tinyint1
    return fixes


class MysqlSource:
    dialect = "mysql"

    def __init__(
        self, settings: MysqlSettings, secrets: dict[str, str], policy: SourcePolicy
    ) -> None:
        self._policy = policy
        self._s = settings
        self._password = secrets.get("password", "")
        self._calls = OpenCalls()

    def _failed(self, kind: str, detail: object) -> ConnectFailed:
        where = f"mysql {self._s.host}:{self._s.port}/{self._s.database}"
        return base.connect_failed(kind, where, str(detail), self._password)

    def _ssl(self) -> dict[str, Any] | None:
        if not (self._s.ssl or self._s.ssl_ca):
            return None
        if not self._s.ssl_ca:
            return {"check_hostname": False}
        # Checked here since PyMySQL raises its errors unwrapped; one message whether the file
        # is missing or not a CA, so the answer tells nothing about the server's files. Only a
        # small regular file is read (not /dev/zero, not a FIFO that never ends).
        # It is a path a request named, so it is confined like a sqlite path (checked again
        # here: a symlink may have been swapped in since it was saved).
        try:
            real = str(confine.confined(confine.checked_spelling(self._s.ssl_ca), self._policy))
            info = os.stat(real)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SSL_CA_BYTES:
                raise SourceError(BAD_SSL_CA)
            ssl.create_default_context(cafile=real)
        except (OSError, ssl.SSLError, ValueError) as exc:  # PathRefused is a ValueError
            raise SourceError(BAD_SSL_CA) from exc
        return {"ca": real}

    def _socket(self, timeout: float) -> socket.socket:
        """A TCP connection to a checked address (never the name again, so a DNS answer that
        changed since the check cannot slip past); PyMySQL keeps the name for TLS."""
        s = self._s
        addresses = base.server_addresses_or_fail(
            s.host, s.port, s.database, self._policy, self._failed
        )
        errors: list[OSError] = []
        for address in addresses:
            try:
                sock = socket.create_connection((address, self._s.port), timeout)
            except OSError as exc:
                errors.append(exc)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            return sock
        kind = base.TIMED_OUT if all(isinstance(e, TimeoutError) for e in errors) else None
        raise self._failed(kind or base.COULD_NOT_CONNECT, "; ".join(map(str, errors)))

    def _connect(self, unbuffered: bool = False) -> pymysql.connections.Connection[Any]:
        timeout = connect_timeout_s(self._s.connect_timeout, self._policy)
        conn = pymysql.connect(
            host=self._s.host,
            port=self._s.port,
            user=self._s.user,
            password=self._password,
            database=self._s.database,
            charset="utf8mb4",
            connect_timeout=timeout,
            # The handshake reads and writes under the connect limit: a peer that accepts and
            # never speaks must not hold the caller (PyMySQL's default waits forever).
            read_timeout=timeout,
            write_timeout=timeout,
            ssl=self._ssl(),
            cursorclass=(pymysql.cursors.SSCursor if unbuffered else pymysql.cursors.Cursor),
            init_command="SET time_zone = '+00:00'",
            defer_connect=True,
        )
        try:
            conn.connect(self._socket(timeout))
        except (pymysql.Error, *_GARBLED, OSError) as exc:
            raise self._failed(connect_error_class(exc), exc) from exc
        # Then: interactive calls wait for the server at most their read timeout; runs wait
        # without a socket limit (a big sort's first row may take long; the stall limit
        # covers a source that stops). PyMySQL has no public setter for it.
        read_timeout = self._policy.read_timeout_s
        conn._read_timeout = None if read_timeout is None else read_timeout + SERVER_LIMIT_GRACE_S
        try:
            with conn.cursor() as cur:
                if read_timeout is not None:
                    _limit_statements(cur, read_timeout)
                # Egress only reads: a SQL template calling a function that writes fails.
                cur.execute("SET SESSION TRANSACTION READ ONLY")
        except pymysql.Error as exc:
            conn.close()
            raise SourceError(_clean(exc)) from exc
        self._track(conn)
        return conn

    def check(self) -> None:
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")

    def check_access(self) -> list[str]:
        try:
            with self._connect() as conn, conn.cursor() as cur:
                cur.execute("SELECT CURRENT_USER()")
                row = cur.fetchone()
                user, _, host = str(row[0] if row else "").rpartition("@")
                cur.execute(_ACCESS_SQL, {"g": f"'{user}'@'{host}'"})
                privileges = {str(p).upper() for (p,) in cur.fetchall()}
                sees_transactions = server_clock(cur) is not None
        except pymysql.Error as exc:
            raise SourceError(_clean(exc)) from exc
        if "SUPER" in privileges:
            warnings = [SUPERUSER_WARNING]
        else:
            warnings = [WRITER_WARNING] if privileges & _WRITES else []
        return warnings if sees_transactions else [*warnings, PROCESS_WARNING]

    def catalog(self) -> list[TableInfo]:
        try:
            with self._connect() as conn, conn.cursor() as cur:
                cur.execute(_CATALOG_SQL, (self._s.database,))
                rows = cur.fetchall()
                cur.execute(_PK_SQL, (self._s.database,))
                pk_rows = cur.fetchall()
                try:
                    cur.execute(_JSON_CHECKS_SQL, (self._s.database,))
                    json_columns = set(cur.fetchall())
                except pymysql.err.OperationalError:  # MySQL: JSON is its own DATA_TYPE
                    json_columns = set()
        except pymysql.Error as exc:
            raise SourceError(_clean(exc)) from exc
        keys: dict[str, list[str]] = defaultdict(list)
        for table, column in pk_rows:
            keys[table].append(column)
        tables: dict[str, TableInfo] = {}
        for schema, table, kind, col, dtype, ctype, prec, scale, nullable, _key in rows:
            if schema in _SYSTEM:
                continue
            info = tables.get(table)
            if info is None:
                info = TableInfo(
                    schema=schema,
                    name=table,
                    columns=[],
                    primary_key=keys.get(table, []),
                    kind="view" if kind == "VIEW" else "table",
                )
                tables[table] = info
            logical = logical_type(dtype, ctype, prec, scale, self._s.tinyint1AsBoolean)
            if (table, col) in json_columns and logical == "string":
                logical = "json"
            info.columns.append(ColumnInfo(col, logical, nullable == "YES"))
        return list(tables.values())

    def describe(self, query: str) -> list[ColumnInfo]:
        limit_s = base.probe_limit_s(self._policy.read_timeout_s)
        with self._connect() as conn, conn.cursor() as cur:
            _limit_statements(cur, limit_s)
            try:
                cur.execute(probe_statement(query, self.dialect))
            except pymysql.err.OperationalError as exc:
                slow = exc.args[0] in (_STATEMENT_TIMEOUT, _EXECUTION_TIMEOUT)
                raise QueryError(base.probe_too_slow(limit_s) if slow else _clean(exc)) from exc
            except pymysql.Error as exc:
                raise QueryError(_clean(exc)) from exc
            # The description lacks the unsigned flag and the character set; the field
            # descriptors of the result carry both.
            return [result_column(f, self._s.tinyint1AsBoolean) for f in cur._result.fields]

    def max_value(self, plan: ReadPlan, field: str) -> Any:
        return self._max(plan, field, with_clock=False)[0]

    def max_value_and_clock(self, plan: ReadPlan, field: str) -> tuple[Any, ServerClock | None]:
        return self._max(plan, field, with_clock=True)

    def _max(self, plan: ReadPlan, field: str, with_clock: bool) -> tuple[Any, ServerClock | None]:
        try:
            with self._connect() as conn, conn.cursor() as cur:
                cur.execute(max_statement(plan, field, "mysql"))
                row = cur.fetchone()
                # After the maximum: every id or NOW() taken later lies above it.
                clock = server_clock(cur) if with_clock else None
        except pymysql.Error as exc:
            raise SourceError(_clean(exc)) from exc
        return (row[0] if row else None), clock

    def read(
        self, plan: ReadPlan, batch_rows: int, batch_bytes: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        schema = arrow_schema(plan.fields)
        conn = self._connect(unbuffered=True)
        try:
            # PyMySQL's parameters are %-formatting of the whole text: instead its own quoting
            # (which knows the session's charset and NO_BACKSLASH_ESCAPES) renders each value
            # into its place in the tree, and the text is executed without arguments.
            # PyMySQL writes an aware datetime without its offset: it gets the UTC one.
            query = select_statement(plan, self.dialect, convert=naive_utc, quote=conn.escape).sql
            with conn.cursor() as cur:
                try:
                    cur.execute(query)
                    fixes = column_fixes(cur.description, plan.fields, self._s)
                    for rows in bounded_rows(cur, plan.fields, batch_rows, batch_bytes):
                        yield rows_to_batch(rows, plan.fields, schema, fixes)
                except pymysql.Error as exc:
                    raise SourceError(_clean(exc)) from exc
        finally:
            conn.close()

    def close(self) -> None:
        return None

    def interrupt(self) -> None:
        self._calls.interrupt()

    def _track(self, conn: pymysql.connections.Connection[Any]) -> None:
        # PyMySQL reads with plain blocking socket calls: shutting the socket down is what
        # makes a blocked recv return (closing it from another thread would not).
        try:
            self._calls.track(SocketRef.of(conn._sock.fileno()).shutdown)
        except BaseException:
            conn.close()
            raise


def _limit_statements(cur: Any, seconds: float) -> None:
    """The server stops this session's statements after ``seconds``."""
    try:  # MariaDB's limit, in seconds (MySQL's max_execution_time covers SELECTs only)
        cur.execute("SET SESSION max_statement_time = %s", (seconds,))
    except pymysql.Error:
        cur.execute("SET SESSION max_execution_time = %s", (int(seconds * 1000),))


def _clean(exc: BaseException) -> str:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) == 2 and isinstance(args[1], str):
        return f"{args[1]} (MySQL error {args[0]})"
    return str(exc) or type(exc).__name__
