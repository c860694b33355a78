"""A run's streamed read through libmysqlclient (mysql-connector-python's C extension's
connection): Egress's C loop copies each row's values into Arrow's column buffers
(``fetch_native``; where it was not built or its checks fail, one ``fetch_row`` call a row
here), and each column becomes Arrow in one vectorised cast. PyMySQL decodes every packet in
Python (~20 µs a row of 12 columns); this path spends well under 1 µs. Interactive calls, TLS
with a CA (whose host name check needs PyMySQL's own socket) and parallel reads stay on
PyMySQL (``source``).

What a value becomes is PyMySQL's own rule: a column whose vectorised cast fails, or whose
type has no such cast (TIME, BIT, geometries, unbounded decimals), goes through PyMySQL's
decoder and the source's fixes value by value, as on the PyMySQL path."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Generator, Iterator
from importlib.util import find_spec
from itertools import chain, islice
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pymysql
from pymysql import converters
from pymysql.connections import TEXT_TYPES
from pymysql.constants import FIELD_TYPE

from egress.domain.catalog import ColumnInfo
from egress.domain.types import parse_decimal
from egress.sources import base
from egress.sources.base import OpenCalls, SocketRef, SourceError
from egress.sources.mysql import fetch_native
from egress.sources.mysql.columns import column_fixes
from egress.sources.mysql.connect import clean_error, connect_error_class
from egress.sources.mysql.settings import MysqlSettings
from egress.sources.rows import column_array

try:
    import _mysql_connector

    AVAILABLE = True
except ImportError:  # loaded after pyarrow (``egress/__init__``), or not installed
    AVAILABLE = False

# libmysqlclient loads its authentication plugins (mysql_native_password: MariaDB's default)
# from here; the wheel ships them beside its own libraries.
_SPEC = find_spec("mysql")
PLUGIN_DIR = (
    os.path.join(next(iter(_SPEC.submodule_search_locations)), "vendor", "plugin")
    if _SPEC is not None and _SPEC.submodule_search_locations
    else ""
)
_INTEGER_CODES = frozenset(
    {
        FIELD_TYPE.TINY,
        FIELD_TYPE.SHORT,
        FIELD_TYPE.INT24,
        FIELD_TYPE.LONG,
        FIELD_TYPE.LONGLONG,
        FIELD_TYPE.YEAR,
    }
)
_TEXT_CODES = frozenset(
    {
        FIELD_TYPE.VAR_STRING,
        FIELD_TYPE.STRING,
        FIELD_TYPE.VARCHAR,
        FIELD_TYPE.BLOB,
        FIELD_TYPE.TINY_BLOB,
        FIELD_TYPE.MEDIUM_BLOB,
        FIELD_TYPE.LONG_BLOB,
        FIELD_TYPE.ENUM,
        FIELD_TYPE.SET,
        FIELD_TYPE.JSON,
    }
)
_BINARY_CHARSET = 63
# Where the server reports this session's client address (our end of the socket).
_CLIENT_ADDRESS_SQL = "SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()"

Failed = Callable[[str, object], Exception]
# Rows taken from libmysqlclient per step of the batching (``_bounded``).
_STEP = 256


def as_pymysql(exc: BaseException) -> pymysql.Error:
    """The C extension's error as PyMySQL's for its code, so the messages, the connect
    classes and the transient/terminal rules of the PyMySQL path apply unchanged."""
    code = getattr(exc, "errno", None)
    text = getattr(exc, "msg", None) or str(exc)
    if "system error: 110" in text:  # ETIMEDOUT, in the words PyMySQL's classes look for
        text += " (timed out)"
    if not isinstance(code, int) or code <= 0:
        return pymysql.err.OperationalError(2013, text)
    cls = pymysql.err.error_map.get(code, pymysql.err.OperationalError)
    return cls(code, text)


def _run(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    conn.query(sql)
    rows = []
    if conn.have_result_set:
        while (row := conn.fetch_row()) is not None:
            rows.append(row)
        conn.free_result()
    return rows


class RawSession:
    """One libmysqlclient connection to a checked address, set up as PyMySQL's sessions are
    (UTC, read only, the policy's statement limit) and stoppable from another thread."""

    def __init__(
        self,
        settings: MysqlSettings,
        password: str,
        addresses: list[str],
        timeout_s: float,
        read_timeout_s: float | None,
        failed: Failed,
    ) -> None:
        errors: list[BaseException] = []
        for address in addresses:
            conn = _mysql_connector.MySQL(
                buffered=False,
                raw=True,
                charset_name="utf8mb4",
                connection_timeout=max(1, math.ceil(timeout_s)),
                plugin_dir=PLUGIN_DIR,
            )
            try:
                # The address, never the name again (a DNS answer that changed since the check
                # cannot slip past); TLS here never verifies a host name (no CA: ``source``).
                conn.connect(
                    host=address,
                    port=settings.port,
                    user=settings.user,
                    password=password,
                    database=settings.database,
                    ssl_disabled=not settings.ssl,
                    ssl_verify_cert=False,
                    ssl_verify_identity=False,
                )
            except _mysql_connector.MySQLInterfaceError as exc:
                errors.append(as_pymysql(exc))
                continue
            self._conn = conn
            self.address = address
            break
        else:
            last = errors[-1] if errors else OSError("no address")
            raise failed(connect_error_class(last), last)
        try:
            _run(conn, "SET time_zone = '+00:00'")
            if read_timeout_s is not None:
                try:  # MariaDB's limit, in seconds (MySQL's covers SELECTs only)
                    _run(conn, f"SET SESSION max_statement_time = {float(read_timeout_s)}")
                except _mysql_connector.MySQLInterfaceError:
                    _run(conn, f"SET SESSION max_execution_time = {int(read_timeout_s * 1000)}")
            # Egress only reads: a SQL template calling a function that writes fails.
            _run(conn, "SET SESSION TRANSACTION READ ONLY")
            client = _run(conn, _CLIENT_ADDRESS_SQL)
        except _mysql_connector.MySQLInterfaceError as exc:
            conn.close()
            raise SourceError(clean_error(as_pymysql(exc))) from exc
        self._socket = _own_socket(client[0][0] if client else b"", address, settings.port)
        # Never connected: PyMySQL's quoting, fed the session's status.
        self._quoting = pymysql.connections.Connection(defer_connect=True, charset="utf8mb4")

    def track(self, calls: OpenCalls, kill: Callable[[int], None]) -> None:
        """Stopping: our end of the socket shut down, so a blocked read returns at once
        whatever the server does (as on the PyMySQL path); when the socket could not be told
        apart, the server is asked to kill the statement over a connection of its own."""
        thread_id = self._conn.thread_id()
        ref = self._socket

        def stop() -> None:
            if ref is not None:
                ref.shutdown()
            else:
                base.in_background(lambda: kill(thread_id))

        try:
            calls.track(stop)
        except BaseException:
            self._conn.close()
            raise

    def run(self, sql: str) -> list[tuple[Any, ...]]:
        """A statement's rows (values as the server's text, in bytes)."""
        try:
            return _run(self._conn, sql)
        except _mysql_connector.MySQLInterfaceError as exc:
            error = as_pymysql(exc)
            raise SourceError(clean_error(error)) from error

    def close(self) -> None:
        self._conn.close()

    def escape(self, value: Any) -> str:
        """A value as a SQL literal, by PyMySQL's own rules (``source``'s quoting) for this
        session's status (NO_BACKSLASH_ESCAPES)."""
        self._quoting.server_status = self._conn.st_server_status()
        return str(self._quoting.escape(value))

    def stream(
        self,
        sql: str,
        fields: list[ColumnInfo],
        schema: pa.Schema,
        settings: MysqlSettings,
        batch_rows: int,
        batch_bytes: int | None,
    ) -> Iterator[pa.RecordBatch]:
        """The query's rows in Arrow batches; the session is closed at the end."""
        read: Generator[Any, None, None] | None = None
        try:
            mysql = fetch_native.handle(self._conn)
            if mysql is None:
                read = self._python_columns(sql.encode(), batch_rows, batch_bytes)
            else:
                read = _native_columns(mysql, sql.encode(), batch_rows, batch_bytes)
            description = next(read)
            # (name, type code) as PyMySQL's description, for the source's fixes.
            fixes = column_fixes([(d[0], d[1]) for d in description], fields, settings)
            casts = [
                _cast_for(f.type, d[1], d[2]) for f, d in zip(fields, description, strict=True)
            ]
            decoders = [_pymysql_decoder(d[1], d[2]) for d in description]
            for raws in read:
                arrays = []
                for i, f in enumerate(fields):
                    raw = raws[i].cast(pa.binary())
                    cast = casts[i]
                    array = None
                    # A fix acts on values no cast accepts (a zero date, a TINYINT(1) of 2).
                    if cast is not None:
                        try:
                            array = cast(raw)
                        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                            array = None
                    if array is None:  # PyMySQL's rule, value by value
                        values = [None if v is None else decoders[i](v) for v in raw.to_pylist()]
                        if i in fixes:
                            values = fixes[i](f.name, values)
                        array = column_array(f.name, values, f.type)
                    arrays.append(array)
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)
        except (_mysql_connector.MySQLInterfaceError, fetch_native.NativeError) as exc:
            error = as_pymysql(exc)
            raise SourceError(clean_error(error)) from error
        finally:
            # Closed first, then the rows' reader: a result ended early is then let go without
            # reading the rest of it from the server (libmysqlclient marks it cancelled).
            self._conn.close()
            if read is not None:
                read.close()

    def _python_columns(
        self, sql: bytes, batch_rows: int, batch_bytes: int | None
    ) -> Generator[Any, None, None]:
        """The description (name, type code, character set) first, then each batch's columns
        (the server's text of each value) from the C extension's rows, one call a row."""
        conn = self._conn
        conn.query(sql)
        yield [(d[4], d[8], d[6]) for d in conn.fetch_fields()]
        width = len(conn.fetch_fields())
        for flat in _bounded(conn.fetch_row, batch_rows, batch_bytes):
            # Every value of the batch, row after row: column i is every width-th.
            starts = pa.array(range(0, len(flat), width), pa.int64())
            yield [flat.take(pc.add(starts, i)) for i in range(width)]


def _native_columns(
    mysql: int, sql: bytes, batch_rows: int, batch_bytes: int | None
) -> Generator[Any, None, None]:
    """As ``RawSession._python_columns``, the rows read in C (``fetch_native``)."""
    result = fetch_native.query(mysql, sql)
    try:
        description = fetch_native.description(result)
        yield description
        yield from fetch_native.batches_of(mysql, result, len(description), batch_rows, batch_bytes)
    finally:
        fetch_native.free(result)


def _bounded(
    fetch: Callable[[], tuple[bytes | None, ...] | None], batch_rows: int, batch_bytes: int | None
) -> Iterator[pa.LargeBinaryArray]:
    """Batches of at most ``batch_rows`` rows as one array of their values, row after row,
    ended too once the values reach about ``batch_bytes`` (as ``rows.bounded_rows``, a raw
    value weighing its text's length). Rows are taken in steps of as many as about half the
    room left holds at the average size so far (at most ``_STEP``), each step's values made
    Arrow at once and measured by its data buffer, so no value is measured or moved in Python
    (measuring, then splitting the rows into columns, cost as much as fetching them); each
    column is then taken from the batch's array in C. A step of big rows overshoots by at most
    that step. Large binary: a batch's values together may pass 2 GiB."""
    rows = iter(fetch, None)
    parts: list[pa.LargeBinaryArray] = []
    count = size = 0
    row_size = 1.0  # the average so far, in bytes
    step = 1
    while chunk := list(islice(rows, step)):
        part = pa.array(list(chain.from_iterable(chunk)), pa.large_binary())
        parts.append(part)
        count += len(chunk)
        if batch_bytes is not None:
            data = part.buffers()[2]
            size += 0 if data is None else data.size
            row_size = max(1.0, size / count)
        if count >= batch_rows or (batch_bytes is not None and size >= batch_bytes):
            yield pa.concat_arrays(parts)
            parts, count, size = [], 0, 0
        room = batch_rows - count
        if batch_bytes is not None:
            room = min(room, int((batch_bytes - size) / (2 * row_size)))
        step = max(1, min(_STEP, room))
    if parts:
        yield pa.concat_arrays(parts)


def _own_socket(client: bytes | str, server: str, port: int) -> SocketRef | None:
    """Our socket to ``server``, found among the process's descriptors by the client address
    the server reports for the session (None when it cannot be told apart: a proxy, NAT)."""
    text = client.decode() if isinstance(client, bytes) else client
    host, _, local_port = text.rpartition(":")
    if not local_port.isdigit():
        return None
    host = host.strip("[]")
    found: list[SocketRef] = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            ref = SocketRef.of(int(name))
        except OSError:
            continue
        local, peer = ref.ends
        if (
            isinstance(local, tuple)
            and local[1] == int(local_port)
            and _same_host(local[0], host)
            and peer[1] == port
            and _same_host(peer[0], server)
        ):
            found.append(ref)
    return found[0] if len(found) == 1 else None


def _same_host(a: str, b: str) -> bool:
    # An IPv4 peer of a dual-stack socket reads "::ffff:127.0.0.1".
    return a.removeprefix("::ffff:") == b.removeprefix("::ffff:")


def _pymysql_decoder(type_code: int, charset: int) -> Callable[[bytes], Any]:
    """PyMySQL's decoding of one value of this column (``MySQLResult._get_descriptions``)."""
    if type_code == FIELD_TYPE.JSON or (type_code in TEXT_TYPES and charset != _BINARY_CHARSET):
        encoding: str | None = "utf-8"
    elif type_code in TEXT_TYPES:
        encoding = None
    else:
        encoding = "ascii"
    convert = converters.decoders.get(type_code)
    if convert is converters.through:
        convert = None
    if encoding is None:
        return convert or (lambda v: v)
    text = encoding
    if convert is None:
        return lambda v: v.decode(text)
    return lambda v: convert(v.decode(text))


def _cast_for(logical: str, type_code: int, charset: int) -> Callable[[pa.Array], pa.Array] | None:
    """The vectorised cast of a column's raw bytes to its Arrow type, or None (value by
    value)."""
    if type_code in _INTEGER_CODES and logical in ("int16", "int32", "int64"):
        target = {"int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64()}[logical]
        return lambda raw: pc.cast(raw.cast(pa.string()), target)
    if logical == "boolean" and type_code == FIELD_TYPE.TINY:
        return _booleans
    if type_code in (FIELD_TYPE.DOUBLE, FIELD_TYPE.FLOAT) and logical in ("float32", "float64"):
        # Text → double → float32, as PyMySQL's float() then Arrow do.
        if logical == "float64":
            return lambda raw: pc.cast(raw.cast(pa.string()), pa.float64())
        return lambda raw: pc.cast(pc.cast(raw.cast(pa.string()), pa.float64()), pa.float32())
    dec = parse_decimal(logical)
    if dec is not None and type_code in (FIELD_TYPE.NEWDECIMAL, FIELD_TYPE.LONGLONG):
        return lambda raw: pc.cast(raw.cast(pa.string()), pa.decimal128(*dec))
    if logical == "timestamp" and type_code == FIELD_TYPE.DATETIME:
        return lambda raw: pc.cast(raw.cast(pa.string()), pa.timestamp("us"))
    if logical == "timestamptz" and type_code == FIELD_TYPE.TIMESTAMP:
        utc = pa.timestamp("us", tz="UTC")
        return lambda raw: pc.cast(pc.cast(raw.cast(pa.string()), pa.timestamp("us")), utc)
    if logical == "date" and type_code in (FIELD_TYPE.DATE, FIELD_TYPE.NEWDATE):
        return lambda raw: pc.cast(raw.cast(pa.string()), pa.date32())
    if logical in ("string", "json") and (
        type_code == FIELD_TYPE.JSON or (type_code in _TEXT_CODES and charset != _BINARY_CHARSET)
    ):
        return lambda raw: raw.cast(pa.string())
    if logical == "binary" and type_code in _TEXT_CODES and charset == _BINARY_CHARSET:
        return lambda raw: raw
    return None


def _booleans(raw: pa.Array) -> pa.Array:
    """TINYINT(1) as booleans when every value is 0 or 1 (else the fix names the value)."""
    ints = pc.cast(raw.cast(pa.string()), pa.int8())
    low, high = pc.min_max(ints).values()
    if (low.as_py() or 0) < 0 or (high.as_py() or 0) > 1:
        raise pa.ArrowInvalid("a TINYINT(1) other than 0 or 1")
    return pc.cast(ints, pa.bool_())
