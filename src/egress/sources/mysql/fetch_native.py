"""A MySQL result read into Arrow columns in C (``fetch_rows.c``), on a mysql-connector-python
session (``raw.RawSession``): the statement and its rows go through libmysqlclient's own
functions, taken from the copy the connector's C extension links in, on the connection that
extension opened (its ``MYSQL`` handle sits right after the Python object's header: checked
against the connection's thread id, and the field layout against a probe, before either is
used). Where the C part was not built, or a check fails, ``raw`` reads rows in Python."""

from __future__ import annotations

import ctypes
import functools
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from egress.sources.native import address, built_library

LIBRARY_NAME = "_fetch_rows"
DONE, BATCH, FULL, FAILED = 0, 1, 2, -1
# Where CPython puts an object's own fields: after its reference count and type.
_OBJECT_HEADER = 2 * ctypes.sizeof(ctypes.c_void_p)
# A column's first data buffer holds this much (it grows, a batch at a time, to what it needs).
_FIRST_COLUMN_BYTES = 1 << 16
_PROBE = b"SELECT 1 AS egress_probe"
# libmysqlclient's enum_field_types: what the probe's column may come as.
_INTEGER_TYPES = {3, 8}  # LONG, LONGLONG

log = logging.getLogger(__name__)


class _Functions(ctypes.Structure):
    _fields_ = [(name, ctypes.c_void_p) for name in ("fetch_row", "fetch_lengths", "error_code")]


class _Batch(ctypes.Structure):
    _fields_ = [
        ("width", ctypes.c_long),
        ("capacity", ctypes.c_long),
        ("ready_bytes", ctypes.c_long),
        ("rows", ctypes.c_long),
        ("bytes", ctypes.c_long),
        ("offsets", ctypes.c_void_p),
        ("validity", ctypes.c_void_p),
        ("data", ctypes.c_void_p),
        ("data_capacity", ctypes.c_void_p),
        ("nulls", ctypes.c_void_p),
        ("pending", ctypes.c_void_p),
        ("pending_lengths", ctypes.c_void_p),
        ("short_column", ctypes.c_long),
        ("short_bytes", ctypes.c_long),
    ]


class _Field(ctypes.Structure):
    """libmysqlclient's MYSQL_FIELD (mysql.h), as far as Egress reads it."""

    _fields_ = [
        *[
            (name, ctypes.c_char_p)
            for name in ("name", "org_name", "table", "org_table", "db", "catalog", "default")
        ],
        ("length", ctypes.c_ulong),
        ("max_length", ctypes.c_ulong),
        *[
            (name, ctypes.c_uint)
            for name in (
                "name_length",
                "org_name_length",
                "table_length",
                "org_table_length",
                "db_length",
                "catalog_length",
                "default_length",
                "flags",
                "decimals",
                "charsetnr",
                "type",
            )
        ],
    ]


class NativeError(Exception):
    """libmysqlclient's error on the connection: its code and message."""

    def __init__(self, errno: int, msg: str) -> None:
        super().__init__(msg)
        self.errno = errno
        self.msg = msg


class _Native:
    def __init__(self, built: ctypes.CDLL, client: ctypes.CDLL) -> None:
        self.fetch = built.egress_mysql_fetch
        self.fetch.restype = ctypes.c_int
        self.fetch.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.POINTER(_Functions),
            ctypes.POINTER(_Batch),
        ]
        self.functions = _Functions(
            *(
                ctypes.cast(getattr(client, name), ctypes.c_void_p).value
                for name in ("mysql_fetch_row", "mysql_fetch_lengths", "mysql_errno")
            )
        )
        sig = {
            "mysql_real_query": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong]),
            "mysql_use_result": (ctypes.c_void_p, [ctypes.c_void_p]),
            "mysql_free_result": (None, [ctypes.c_void_p]),
            "mysql_num_fields": (ctypes.c_uint, [ctypes.c_void_p]),
            "mysql_fetch_field_direct": (ctypes.POINTER(_Field), [ctypes.c_void_p, ctypes.c_uint]),
            "mysql_errno": (ctypes.c_uint, [ctypes.c_void_p]),
            "mysql_error": (ctypes.c_char_p, [ctypes.c_void_p]),
            "mysql_thread_id": (ctypes.c_ulong, [ctypes.c_void_p]),
        }
        for name, (restype, argtypes) in sig.items():
            function = getattr(client, name)
            function.restype, function.argtypes = restype, argtypes
        self.client = client


def _library() -> Path | None:
    return built_library(__file__, LIBRARY_NAME)


def _load() -> _Native | None:
    try:
        import _mysql_connector
    except ImportError:
        return None
    library = _library()
    if library is None or not sys.platform.startswith("linux"):
        return None
    try:
        return _Native(ctypes.CDLL(str(library)), ctypes.CDLL(_mysql_connector.__file__))
    except (OSError, AttributeError):  # a connector without libmysqlclient's symbols
        return None


NATIVE = _load()


def handle(conn: Any) -> int | None:
    """The ``MYSQL`` handle of a connected ``_mysql_connector.MySQL``, or None when the C part
    is missing or the handle and the field layout do not check out (then rows are read in
    Python)."""
    if NATIVE is None:
        return None
    mysql = id(conn) + _OBJECT_HEADER
    if NATIVE.client.mysql_thread_id(mysql) != conn.thread_id() or not _checked(mysql):
        _say_python_once()
        return None
    return mysql


_checks: list[bool] = []  # the probe's answer, once a process: the layout is the library's


def _checked(mysql: int) -> bool:
    if not _checks:
        try:
            _checks.append(_probe(mysql))
        except NativeError:  # the session failed, not the layout: ask again next time
            return False
    return _checks[0]


def _probe(mysql: int) -> bool:
    """Whether a known statement's column and row read back as they should. Raises
    ``NativeError`` when the statement fails."""
    result = query(mysql, _PROBE)
    try:
        columns = description(result)
        batches = list(batches_of(mysql, result, len(columns), 10, None))
    finally:
        free(result)
    if len(columns) != 1 or columns[0][:2] != ("egress_probe", columns[0][1]):
        return False
    return columns[0][1] in _INTEGER_TYPES and [b.to_pylist() for b in batches[0]] == [[b"1"]]


@functools.cache
def _say_python_once() -> None:
    log.warning(
        "MySQL rows read in Python (~2 µs a row more): libmysqlclient's handle or field layout"
        " in this mysql-connector-python did not check out"
    )


def _error(mysql: int) -> NativeError:
    assert NATIVE is not None
    text = NATIVE.client.mysql_error(mysql) or b""
    return NativeError(int(NATIVE.client.mysql_errno(mysql)), text.decode(errors="replace"))


def query(mysql: int, sql: bytes) -> int:
    """Runs ``sql``; its result, read row by row from the server (``mysql_use_result``).
    Raises ``NativeError``."""
    assert NATIVE is not None
    if NATIVE.client.mysql_real_query(mysql, sql, len(sql)) != 0:
        raise _error(mysql)
    result = NATIVE.client.mysql_use_result(mysql)
    if not result:
        raise _error(mysql) if NATIVE.client.mysql_errno(mysql) else NativeError(0, "no rows")
    return int(result)


def free(result: int) -> None:
    """Ends the result (libmysqlclient reads what the server still sends, unused)."""
    assert NATIVE is not None
    NATIVE.client.mysql_free_result(result)


def description(result: int) -> list[tuple[str, int, int]]:
    """Each column's name, type code and character set number."""
    assert NATIVE is not None
    out = []
    for i in range(NATIVE.client.mysql_num_fields(result)):
        field = NATIVE.client.mysql_fetch_field_direct(result, i).contents
        out.append(((field.name or b"").decode(errors="replace"), field.type, field.charsetnr))
    return out


class _Columns:
    """One batch's buffers: per column Arrow's offsets, validity and data."""

    def __init__(self, width: int, rows: int, data_bytes: list[int]) -> None:
        self.offsets = [bytearray(8 * (rows + 1)) for _ in range(width)]
        self.validity = [bytearray((rows + 7) // 8) for _ in range(width)]
        self.data = [bytearray(n) for n in data_bytes]
        self.nulls = (ctypes.c_long * width)()
        self.capacity = (ctypes.c_long * width)(*data_bytes)
        self._pointers = [
            (ctypes.c_void_p * width)(*(address(b) if b else 0 for b in buffers))
            for buffers in (self.offsets, self.validity, self.data)
        ]

    def attach(self, batch: _Batch) -> None:
        batch.offsets, batch.validity, batch.data = (ctypes.addressof(p) for p in self._pointers)
        batch.data_capacity = ctypes.addressof(self.capacity)
        batch.nulls = ctypes.addressof(self.nulls)
        batch.rows = batch.bytes = 0

    def arrays(self, rows: int) -> list[pa.Array]:
        """The batch's columns, large binary (the buffers handed over, not copied)."""
        out = []
        for i, (offsets, validity, data) in enumerate(
            zip(self.offsets, self.validity, self.data, strict=True)
        ):
            nulls = self.nulls[i]
            buffers = [
                pa.py_buffer(validity) if nulls else None,
                pa.py_buffer(offsets),
                pa.py_buffer(data),
            ]
            out.append(pa.LargeBinaryArray.from_buffers(pa.large_binary(), rows, buffers, nulls))
        return out


def batches_of(
    mysql: int, result: int, width: int, batch_rows: int, batch_bytes: int | None
) -> Iterator[list[pa.Array]]:
    """The result's rows, a batch of at most ``batch_rows`` (and about ``batch_bytes``) at a
    time, as one large-binary array per column (the server's text of each value). Raises
    ``NativeError``."""
    assert NATIVE is not None
    batch = _Batch(width=width, capacity=batch_rows, ready_bytes=batch_bytes or (1 << 62))
    sizes = [_FIRST_COLUMN_BYTES] * width
    while True:
        columns = _Columns(width, batch_rows, sizes)
        columns.attach(batch)
        status = NATIVE.fetch(mysql, result, ctypes.byref(NATIVE.functions), ctypes.byref(batch))
        while status == FULL and batch.rows == 0:  # a row bigger than the buffer: grow it
            short = batch.short_column
            sizes[short] = max(2 * sizes[short], batch.short_bytes)
            columns = _Columns(width, batch_rows, sizes)
            columns.attach(batch)
            status = NATIVE.fetch(
                mysql, result, ctypes.byref(NATIVE.functions), ctypes.byref(batch)
            )
        if status == FAILED:
            raise _error(mysql)
        if status == FULL:  # next time, room for this batch's worth of that column
            sizes[batch.short_column] = max(2 * sizes[batch.short_column], batch.short_bytes)
        if batch.rows:
            yield columns.arrays(batch.rows)
        if status == DONE:
            return
