"""PostgreSQL: catalog and COPY fast path over psycopg, Arrow batches over ADBC."""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Literal
from urllib.parse import quote, urlencode

import adbc_driver_postgresql.dbapi as adbc_pg
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from adbc_driver_postgresql import StatementOptions
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlglot import exp

from egress.domain.catalog import ColumnInfo, TableInfo
from egress.domain.plan import ReadPlan
from egress.domain.types import decimal_type, list_type, parse_decimal, parse_list
from egress.query.custom import probe_statement
from egress.query.select import ColumnSql, column, max_statement, select_statement, table_sql
from egress.sources import base
from egress.sources.arrow_types import arrow_schema, can_be_infinite, conform, with_infinities
from egress.sources.base import (
    ConnectFailed,
    OpenCalls,
    ProgressFn,
    QueryError,
    SnapshotMark,
    SocketRef,
    SourceError,
)
from egress.sources.policy import (
    SourcePolicy,
    connect_timeout_s,
)

log = logging.getLogger(__name__)

# Every session renders values the same way, whichever path (Arrow or COPY) reads them, and
# only reads: a SQL template that calls a function with side effects fails instead of writing.
SESSION_SETTINGS = (
    "SET default_transaction_read_only = on",
    "SET TIME ZONE 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'iso_8601'",
    "SET extra_float_digits = 1",
)

_NATIVE: dict[str, str] = {
    "bool": "boolean",
    "int2": "int16",
    "int4": "int32",
    "int8": "int64",
    "float4": "float32",
    "float8": "float64",
    "text": "string",
    "varchar": "string",
    "bpchar": "string",
    "name": "string",
    "citext": "string",
    "date": "date",
    "time": "time",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "bytea": "binary",
    "json": "json",
    "jsonb": "json",
    "uuid": "uuid",
    "money": "decimal",  # read as money::numeric: its scale follows lc_monetary
    # Object identifiers are unsigned 32-bit: int64 holds every one (read as ::int8).
    "oid": "int64",
    **dict.fromkeys(
        [
            "regclass",
            "regcollation",
            "regconfig",
            "regdictionary",
            "regnamespace",
            "regoper",
            "regoperator",
            "regproc",
            "regprocedure",
            "regrole",
            "regtype",
        ],
        "int64",
    ),
}
# Logical types whose values travel as text from PostgreSQL (cast in the SELECT).
_AS_TEXT = {"string", "json", "uuid", "decimal"}
# Array elements: the SQL type an array is cast to, so ADBC reads a list of it.
_ELEMENT_SQL = {
    "boolean": "BOOLEAN[]",
    "int16": "SMALLINT[]",
    "int32": "INT[]",
    "int64": "BIGINT[]",
    "float32": "REAL[]",
    "float64": "DOUBLE PRECISION[]",
    "date": "DATE[]",
    "time": "TIME[]",
    "timestamp": "TIMESTAMP[]",
    "timestamptz": "TIMESTAMPTZ[]",
    "binary": "BYTEA[]",
}
# ADBC reads 'infinity'/'-infinity' as the int64 (or int32 days) sentinels shifted from
# PostgreSQL's 2000-01-01 epoch to 1970's, wrapping around: no real value is that far back.
_PG_EPOCH_US = 946_684_800_000_000
_PG_EPOCH_DAYS = 10_957
_ADBC_INFINITY = {
    pa.int64(): (-(2**63) + _PG_EPOCH_US - 1, -(2**63) + _PG_EPOCH_US),
    pa.int32(): (-(2**31) + _PG_EPOCH_DAYS - 1, -(2**31) + _PG_EPOCH_DAYS),
}
# ADBC ends a batch once it holds this many bytes (its own default): kept unless
# EGRESS_BATCH_BYTES is smaller (larger ADBC batches saved no time in the bench).
ADBC_BATCH_HINT_BYTES = 16 << 20
BATCH_HINT_OPTION = StatementOptions.BATCH_SIZE_HINT_BYTES.value
# A marker a multi-dimensional array makes PostgreSQL quote back in its error message.
_MULTIDIM = "egress-multidimensional-array"
_MULTIDIM_ERROR = re.compile(_MULTIDIM + r':(\d+):(.*)"', re.M)

_CATALOG_SQL = """
SELECT n.nspname AS schema_name, c.relname AS table_name, c.relkind,
       a.attname,
       CASE WHEN COALESCE(bt.typcategory, t.typcategory) = 'A' AND et.oid IS NOT NULL
            THEN et.typname || '[]' ELSE COALESCE(bt.typname, t.typname) END AS typname,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod,
       a.attnotnull
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
LEFT JOIN pg_type et ON et.oid = COALESCE(bt.typelem, t.typelem)
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
  AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND has_table_privilege(c.oid, 'SELECT')
ORDER BY n.nspname, c.relname, a.attnum
"""
_PK_SQL = """
SELECT n.nspname, c.relname, a.attname
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN LATERAL unnest(k.conkey) WITH ORDINALITY AS key(attnum, pos) ON true
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = key.attnum
WHERE k.contype = 'p'
ORDER BY n.nspname, c.relname, key.pos
"""


_ACCESS_SQL = """
SELECT r.rolsuper,
       EXISTS (
         SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'f')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\\_%'
           AND (has_table_privilege(c.oid, 'INSERT') OR has_table_privilege(c.oid, 'UPDATE')
                OR has_table_privilege(c.oid, 'DELETE'))
       )
       OR has_database_privilege(current_database(), 'CREATE')
       OR EXISTS (
         SELECT 1 FROM pg_namespace n
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\\_%' AND has_schema_privilege(n.oid, 'CREATE')
       )
FROM pg_roles r WHERE r.rolname = current_user
"""
# Before an incremental run's transaction: may its relation's rows be read by visibility (a
# table has xmin; a view or a foreign table has not), and was anything in progress (a session
# of this database inside a transaction — even one holding no transaction id yet — or one
# hidden from this user)? A standby shows neither the primary's sessions nor their locks.
_IDLE_SQL = """NOT EXISTS (
         SELECT 1 FROM pg_stat_activity a
         WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
           AND a.backend_type <> 'autovacuum worker'
           AND (a.xact_start IS NOT NULL OR a.state IS NULL)
       )"""
_SNAPSHOT_PRE_SQL = f"""
SELECT (SELECT c.relkind IN ('r', 'p', 'm') FROM pg_class c WHERE c.oid = to_regclass({{rel}})),
       pg_is_in_recovery(), pg_current_snapshot()::text, {_IDLE_SQL}
"""
# The first statement of the run's REPEATABLE READ transaction: its snapshot, the mark, and
# which ids between the snapshot's xmin and xmax are still in progress. pg_snapshot lists
# top-level transactions only; a row written under a savepoint carries its subtransaction's
# id, which pg_xact_status reports in progress while its top-level transaction runs. (One
# status lookup per id started since the oldest transaction in progress.)
_SNAPSHOT_SQL = f"""
SELECT pg_current_snapshot()::text, ({{max}}),
       (SELECT string_agg(x::text, ',')
        FROM generate_series(pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
                             pg_snapshot_xmax(pg_current_snapshot())::text::bigint - 1) AS x
        WHERE pg_xact_status(x::text::xid8) = 'in progress'),
       {_IDLE_SQL}
"""
BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
# A transaction in progress in the snapshot that ended before the statuses were read leaves
# its subtransactions unknown: take a new snapshot (each try races a different transaction).
SNAPSHOT_TRIES = 5
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


# What a SQL_ASCII database's bytes are (it stores them unchecked and cannot convert them):
# the Python codec that decodes them, and the client_encoding that passes them unchanged.
SOURCE_ENCODINGS = {
    "utf-8": "UTF8",
    "latin-1": "LATIN1",
    "iso-8859-15": "LATIN9",
    "windows-1252": "WIN1252",
    "windows-1251": "WIN1251",
    "koi8-r": "KOI8R",
    "shift_jis": "SJIS",
    "euc-jp": "EUC_JP",
    "gbk": "GBK",
    "big5": "BIG5",
}
# Every session speaks UTF-8: the server converts from the database's encoding (LATIN1, …).
CLIENT_ENCODING = "UTF8"
SQL_ASCII = "SQL_ASCII"
# Logical types whose text comes from the database's bytes as they are (the rest is ASCII).
_RAW_TEXT = frozenset({"string", "json"})


class PostgresSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1)
    port: int = Field(default=5432, ge=1, le=65535)
    database: str = Field(min_length=1)
    user: str = Field(min_length=1)
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    connect_timeout: int = Field(default=10, ge=1, le=300)
    # camelCase: the names users type in the connection's settings
    sourceEncoding: str = Field(
        default="utf-8",
        description="SQL_ASCII databases only: the encoding of their bytes (strictly decoded)",
    )

    @field_validator("sourceEncoding")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in SOURCE_ENCODINGS:
            raise ValueError(f"must be one of {', '.join(SOURCE_ENCODINGS)}")
        return value


def logical_type(typname: str, typmod: int) -> str:
    """The logical type of a column's declared type (``int4[]`` for an array of int4)."""
    if typname.endswith("[]"):
        element = logical_type(typname[:-2], -1)
        return list_type(element if element in _ELEMENT_SQL else _text_element(element))
    if typname == "numeric":
        if typmod < 0:
            return "decimal"
        return decimal_type(((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF)
    return _NATIVE.get(typname, "string")


def _text_element(logical: str) -> str:
    """Array elements read as text: decimals stay decimals, anything else is a string."""
    return "decimal" if logical == "decimal" or parse_decimal(logical) else "string"


def _is_text(logical: str) -> bool:
    return logical in _AS_TEXT or parse_decimal(logical) is not None


def _arrow_path_sql(field: ColumnInfo) -> exp.Expression:
    """What the Arrow path selects for a column: every rule keys on the logical type only."""
    col = column(field.name)
    element = parse_list(field.type)
    if element is not None:
        return _array_sql(field.name, element)
    if field.type == "decimal" or parse_decimal(field.type):  # also money, as digits
        return exp.cast(exp.cast(col, "NUMERIC"), "TEXT")
    if field.type == "int64":  # also oid and reg* (unsigned 32-bit)
        return exp.cast(col, "BIGINT")
    return exp.cast(col, "TEXT") if _is_text(field.type) else col


def _array_sql(name: str, element: str) -> exp.Expression:
    """A one-dimensional array as its element's array type; a multi-dimensional value fails
    (ADBC would flatten it silently) with an error naming the column."""
    col = column(name)
    value: exp.Expression = col
    if element in _ELEMENT_SQL:
        target = exp.DataType.build(_ELEMENT_SQL[element], dialect="postgres")
    else:
        if element == "decimal":  # money[] too: digits, not '$12.34'
            value = exp.cast(col, exp.DataType.build("NUMERIC[]", dialect="postgres"))
        target = exp.DataType.build("TEXT[]", dialect="postgres")
    ndims = exp.Anonymous(this="array_ndims", expressions=[col.copy()])
    # Not a constant (PostgreSQL would fold it when planning): cast only where it is reached.
    marker = exp.DPipe(
        this=exp.DPipe(
            this=exp.Literal.string(f"{_MULTIDIM}:"), expression=exp.cast(ndims, "TEXT")
        ),
        expression=exp.Literal.string(f":{name}"),
    )
    too_deep = exp.GT(this=ndims.copy(), expression=exp.Literal.number(1))
    return exp.Case(
        ifs=[exp.If(this=too_deep, true=exp.cast(marker, target.copy()))],
        default=exp.Cast(this=value, to=target),
    )


def _raw_text_sql(field: ColumnInfo) -> exp.Expression:
    """The Arrow path's column, but text from a SQL_ASCII database as its bytes (decoded
    here): the server sends SQL_ASCII text unconverted, whatever it holds."""
    if field.type not in _RAW_TEXT:
        return _arrow_path_sql(field)
    return exp.Anonymous(
        this="convert_to",
        expressions=[exp.cast(column(field.name), "TEXT"), exp.Literal.string(SQL_ASCII)],
    )


def _decoded(batch: pa.RecordBatch, fields: list[ColumnInfo], codec: str) -> pa.RecordBatch:
    """The raw-text columns of a SQL_ASCII batch decoded strictly with ``codec``."""
    columns = [
        _decode(f.name, col, codec) if f.type in _RAW_TEXT else col
        for f, col in zip(fields, batch.columns, strict=True)
    ]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _decode(name: str, raw: pa.Array, codec: str) -> pa.Array:
    if codec == "utf-8":
        try:  # Arrow checks UTF-8 itself; a failure is located below
            return pc.cast(raw, pa.string())
        except pa.ArrowInvalid:
            pass
    values: list[str | None] = []
    for value in raw.to_pylist():
        try:
            values.append(None if value is None else value.decode(codec))
        except UnicodeDecodeError as exc:
            bad = value[max(0, exc.start - 8) : exc.end + 8]
            raise SourceError(
                f"column {name!r} holds bytes that are not valid {codec} (near {bad!r}); set "
                "the connection's sourceEncoding to the encoding its SQL_ASCII database holds"
            ) from exc
    return pa.array(values, pa.string())


def _read_error(exc: BaseException) -> SourceError:
    """The driver's message, or what a multi-dimensional array means to the user."""
    match = _MULTIDIM_ERROR.search(str(exc))
    if match:
        return SourceError(
            f"column {match.group(2)!r} holds a {match.group(1)}-dimensional array; only"
            " one-dimensional arrays can be exported (list<T>)"
        )
    return SourceError(_clean(exc))


def _infinities(batch: pa.RecordBatch) -> pa.RecordBatch:
    """ADBC's wrapped-around infinite dates and timestamps as Egress's infinity sentinels."""
    columns = [_column_infinities(col) for col in batch.columns]
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def _column_infinities(col: pa.Array) -> pa.Array:
    if pa.types.is_list(col.type) and can_be_infinite(col.type.value_type):
        values = _column_infinities(col.values)
        return pa.ListArray.from_arrays(col.offsets, values, mask=col.is_null())
    if not can_be_infinite(col.type):
        return col
    storage_type = pa.int64() if pa.types.is_timestamp(col.type) else pa.int32()
    storage = col.view(storage_type)
    high, low = _ADBC_INFINITY[storage_type]
    positive = pc.fill_null(pc.equal(storage, high), False)
    negative = pc.fill_null(pc.equal(storage, low), False)
    if not (pc.any(positive).as_py() or pc.any(negative).as_py()):
        return col
    return with_infinities(col, positive, negative)


# Types the COPY fast path renders exactly as Egress's Arrow CSV writer does.
_COPY_SAFE = {"boolean", "int16", "int32", "int64", "date", "timestamp", "timestamptz"}
# Quoted by Arrow's CSV writer (it writes them as text: an infinite one is a word).
_COPY_QUOTED = _AS_TEXT | {"date", "timestamp", "timestamptz"}


def _copy_sql(field: ColumnInfo) -> exp.Expression:
    col = column(field.name)
    if field.type == "boolean":
        return exp.Case(
            ifs=[
                exp.If(this=col, true=exp.Literal.string("true")),
                exp.If(this=exp.Not(this=col.copy()), true=exp.Literal.string("false")),
            ]
        )
    if field.type in ("timestamp", "timestamptz"):
        utc = field.type == "timestamptz"
        rendered = exp.Anonymous(
            this="to_char",
            expressions=[
                exp.AtTimeZone(this=col, zone=exp.Literal.string("UTC")) if utc else col,
                exp.Literal.string(
                    'YYYY-MM-DD HH24:MI:SS.US"Z"' if utc else "YYYY-MM-DD HH24:MI:SS.US"
                ),
            ],
        )
        # to_char gives NULL for 'infinity'; its text form is the word itself.
        finite = exp.Anonymous(this="isfinite", expressions=[col.copy()])
        return exp.Case(
            ifs=[exp.If(this=finite, true=rendered)], default=exp.cast(col.copy(), "TEXT")
        )
    return _arrow_path_sql(field)


def csv_header(names: list[str]) -> bytes:
    """The header line exactly as pyarrow's CSV writer renders it."""
    return (",".join('"' + n.replace('"', '""') + '"' for n in names) + "\n").encode()


class PostgresSource:
    dialect = "postgres"

    def __init__(
        self, settings: PostgresSettings, secrets: dict[str, str], policy: SourcePolicy
    ) -> None:
        self._policy = policy
        self._s = settings
        self._password = secrets.get("password")
        self._calls = OpenCalls()
        # An incremental run's snapshot transaction, between the mark and the rows.
        self._held: psycopg.Connection[Any] | Any | None = None
        self._sql_ascii: bool | None = None  # known from the first session's server_encoding

    def _where(self) -> str:
        return f"postgresql {self._s.host}:{self._s.port}/{self._s.database}"

    def _failed(self, kind: str, detail: object) -> ConnectFailed:
        return base.connect_failed(kind, self._where(), str(detail), self._password)

    def _target(self) -> tuple[list[str], dict[str, Any]]:
        """The checked addresses (libpq ``hostaddr``: libpq connects to them and resolves
        nothing; ``host`` stays the name, for TLS verification) and the connection limits."""
        s = self._s
        addresses = base.server_addresses_or_fail(
            s.host, s.port, s.database, self._policy, self._failed
        )
        timeout = connect_timeout_s(self._s.connect_timeout, self._policy)
        limits = {
            "sslmode": self._s.sslmode,
            # libpq counts whole seconds (psycopg makes anything under 2 into 2).
            "connect_timeout": str(max(1, math.ceil(timeout))),
            # Data the server never acknowledges fails the connection instead of waiting for
            # the kernel's retransmission limit (about 15 minutes).
            "tcp_user_timeout": str(int(timeout * 1000)),
        }
        return addresses, limits

    def _psycopg(self) -> psycopg.Connection[Any]:
        addresses, limits = self._target()
        try:
            conn = psycopg.connect(
                host=",".join([self._s.host] * len(addresses)),
                hostaddr=",".join(addresses),
                port=",".join([str(self._s.port)] * len(addresses)),
                dbname=self._s.database,
                user=self._s.user,
                password=self._password,
                autocommit=True,
                client_encoding=CLIENT_ENCODING,
                **limits,
            )
        except psycopg.Error as exc:
            raise self._failed(connect_error_class(exc), exc) from exc
        self._track_psycopg(conn)
        for stmt in self._session_settings():
            conn.execute(stmt)
        self._sql_ascii = conn.info.parameter_status("server_encoding") == SQL_ASCII
        if self._sql_ascii and self._s.sourceEncoding != "utf-8":
            # The server passes SQL_ASCII bytes unchanged: labelled with their real encoding,
            # psycopg decodes names and values as what they are.
            pg_name = SOURCE_ENCODINGS[self._s.sourceEncoding]
            conn.execute(sql.SQL("SET client_encoding TO {}").format(sql.Literal(pg_name)))
        return conn

    def _is_sql_ascii(self) -> bool:
        """Whether the database is SQL_ASCII: its text is bytes this source decodes itself."""
        if self._sql_ascii is None:
            self._psycopg().close()
        return bool(self._sql_ascii)

    def _session_settings(self) -> tuple[str, ...]:
        read_timeout = self._policy.read_timeout_s
        if read_timeout is None:  # a run: a big sort's first row may take long (stall limit)
            return SESSION_SETTINGS
        return (*SESSION_SETTINGS, f"SET statement_timeout = {int(read_timeout * 1000)}")

    def _adbc(self, autocommit: bool = False) -> Any:
        addresses, limits = self._target()
        auth = quote(self._s.user, safe="")
        if self._password:
            auth += ":" + quote(self._password, safe="")
        hosts = ",".join(f"{quote(self._s.host, safe='')}:{self._s.port}" for _ in addresses)
        # A SQL_ASCII database in another encoding: labelled so, since the server would refuse
        # its non-UTF-8 bytes (ADBC reads every column name when it connects).
        legacy = self._sql_ascii and self._s.sourceEncoding != "utf-8"
        encoding = SOURCE_ENCODINGS[self._s.sourceEncoding] if legacy else CLIENT_ENCODING
        params = urlencode({"hostaddr": ",".join(addresses), "client_encoding": encoding, **limits})
        uri = f"postgresql://{auth}@{hosts}/{quote(self._s.database, safe='')}?{params}"
        try:
            return adbc_pg.connect(uri, autocommit=autocommit)
        except Exception as exc:  # the driver's errors share no base class with psycopg's
            raise self._failed(connect_error_class(exc), exc) from exc

    def check(self) -> None:
        with self._psycopg() as conn:
            conn.execute("SELECT 1")

    def check_access(self) -> list[str]:
        try:
            with self._psycopg() as conn:
                row = conn.execute(_ACCESS_SQL).fetchone()
        except psycopg.Error as exc:
            raise SourceError(_clean(exc)) from exc
        superuser, writer = row if row else (False, False)
        if superuser:
            return [SUPERUSER_WARNING]
        return [WRITER_WARNING] if writer else []

    def catalog(self) -> list[TableInfo]:
        try:
            with self._psycopg() as conn:
                rows = conn.execute(_CATALOG_SQL).fetchall()
                pk_rows = conn.execute(_PK_SQL).fetchall()
        except (psycopg.Error, UnicodeDecodeError) as exc:  # names in a SQL_ASCII database
            raise SourceError(_clean(exc)) from exc
        keys: dict[tuple[str, str], list[str]] = defaultdict(list)
        for schema, table, col in pk_rows:
            keys[(schema, table)].append(col)
        tables: dict[tuple[str, str], TableInfo] = {}
        for schema, table, relkind, col, typname, typmod, notnull in rows:
            info = tables.get((schema, table))
            if info is None:
                info = TableInfo(
                    schema=schema,
                    name=table,
                    columns=[],
                    primary_key=keys.get((schema, table), []),
                    kind="table" if relkind in ("r", "p", "f") else "view",
                )
                tables[(schema, table)] = info
            info.columns.append(ColumnInfo(col, logical_type(typname, typmod), not notnull))
        return list(tables.values())

    def describe(self, query: str) -> list[ColumnInfo]:
        limit_s = base.probe_limit_s(self._policy.read_timeout_s)
        with self._psycopg() as conn:
            timeout_ms = str(int(limit_s * 1000))
            conn.execute("SELECT set_config('statement_timeout', %s, false)", (timeout_ms,))
            try:
                cur = conn.execute(probe_statement(query, self.dialect))
            except psycopg.errors.QueryCanceled as exc:
                raise QueryError(base.probe_too_slow(limit_s)) from exc
            except (psycopg.Error, UnicodeDecodeError) as exc:
                raise QueryError(_clean(exc)) from exc
            columns = cur.description or []
            result = cur.pgresult
            assert result is not None, "an executed statement has a result"
            # The probe reports type OIDs (domains already resolved to their base type) and
            # typmods: the same inputs the catalog maps from pg_attribute.
            try:
                typnames = dict(
                    conn.execute(
                        "SELECT oid, typname FROM pg_type WHERE oid = ANY(%s::oid[])",
                        ([c.type_code for c in columns],),
                    ).fetchall()
                )
            except psycopg.Error as exc:
                raise SourceError(_clean(exc)) from exc
        return [
            ColumnInfo(c.name, logical_type(typnames.get(c.type_code, ""), result.fmod(i)))
            for i, c in enumerate(columns)
        ]

    def _select(self, conn: psycopg.Connection[Any], plan: ReadPlan, column_sql: ColumnSql) -> str:
        """The plan's SELECT with each value quoted by psycopg into its place in the tree:
        COPY takes no parameters and ADBC binds only typed ones (``date > text`` fails)."""

        codec = self._s.sourceEncoding
        legacy = self._is_sql_ascii() and codec != "utf-8"

        def quote(value: Any) -> str:
            if legacy and isinstance(value, str) and not value.isascii():
                # The query text travels as UTF-8 and SQL_ASCII keeps bytes as they come: the
                # value goes as its bytes in the database's own encoding.
                try:
                    raw = value.encode(codec)
                except UnicodeEncodeError as exc:
                    raise SourceError(
                        f"the filter value {value!r} cannot be written in {codec}"
                    ) from exc
                return f"convert_from('\\x{raw.hex()}'::bytea, '{SQL_ASCII}')"
            try:
                return sql.Literal(value).as_string(conn)
            except psycopg.Error as exc:  # e.g. a NUL character, which text cannot hold
                raise SourceError(f"a value in the filter cannot be sent: {_clean(exc)}") from exc

        return select_statement(plan, self.dialect, column_sql, quote=quote).sql

    def max_value(self, plan: ReadPlan, field: str) -> Any:
        try:
            with self._psycopg() as conn:
                row = conn.execute(max_statement(plan, field, "postgres")).fetchone()
        except (psycopg.Error, UnicodeDecodeError) as exc:
            raise SourceError(_clean(exc)) from exc
        return row[0] if row else None

    def begin_snapshot(self, plan: ReadPlan, field: str, *, copy_csv: bool) -> SnapshotMark | None:
        if plan.query is not None:
            return None
        assert plan.table is not None  # a table, not a SQL template (checked above)
        rel = table_sql(plan.table).sql("postgres")
        pre = _SNAPSHOT_PRE_SQL.format(rel=exp.Literal.string(rel).sql("postgres"))
        sql = _SNAPSHOT_SQL.format(max=max_statement(plan, field, "postgres"))
        conn: Any = self._psycopg() if copy_csv else self._adbc_session()
        try:
            for attempt in range(SNAPSHOT_TRIES):
                has_xmin, standby, before, idle = _one(conn, pre)
                if not has_xmin:
                    conn.close()
                    return None
                _one(conn, BEGIN_SNAPSHOT)
                snapshot, high, running, still_idle = _one(conn, sql)
                # A standby's snapshot lists subtransactions among the ids in progress itself.
                complete = snapshot if standby else _with_subtransactions(snapshot, running or "")
                # Quiet: no session of this database was inside a transaction just before or
                # just after the snapshot, none is in progress in it, and no transaction ended
                # in between (xmax, the next id, did not move).
                quiet = bool(
                    idle
                    and still_idle
                    and not standby
                    and _xip(before) == _xip(snapshot) == []
                    and _xmax(before) == _xmax(snapshot)
                )
                # Try again when the snapshot lost a transaction's subtransactions, or missed
                # being quiet only because something (in any database) committed meanwhile.
                again = complete is None or (idle and still_idle and not quiet)
                if not again or attempt == SNAPSHOT_TRIES - 1:
                    break
                _one(conn, "ROLLBACK")
        except SourceError:
            conn.close()
            raise
        except Exception as exc:  # psycopg's or ADBC's error: the driver's message
            conn.close()
            raise SourceError(_clean(exc)) from exc
        self._held = conn
        return SnapshotMark(high=high, snapshot=complete or snapshot, quiet=quiet)

    def _adbc_session(self) -> Any:
        """An ADBC connection that commits nothing itself (the snapshot transaction is
        begun explicitly), with the session settings applied."""
        conn = self._adbc(autocommit=True)
        cur = conn.cursor()
        self._track_adbc(cur)
        for stmt in self._session_settings():
            cur.execute(stmt)
        return conn

    def _take_held(self) -> Any:
        conn, self._held = self._held, None
        return conn

    def read(
        self, plan: ReadPlan, batch_rows: int, batch_bytes: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        schema = arrow_schema(plan.fields)
        with self._psycopg() as pconn:
            raw = self._sql_ascii is True
            query = self._select(pconn, plan, _raw_text_sql if raw else _arrow_path_sql)
        held = self._take_held()
        conn = held if held is not None else self._adbc()
        try:
            with conn.cursor() as cur:
                self._track_adbc(cur)
                if held is None:
                    for stmt in self._session_settings():
                        cur.execute(stmt)
                hint = min(batch_bytes or ADBC_BATCH_HINT_BYTES, ADBC_BATCH_HINT_BYTES)
                cur.adbc_statement.set_options(**{BATCH_HINT_OPTION: str(hint)})
                try:
                    cur.execute(query)
                    reader = cur.fetch_record_batch()
                    for batch in reader:
                        if raw:
                            batch = _decoded(batch, plan.fields, self._s.sourceEncoding)
                        yield _infinities(conform(batch, schema))
                except (SourceError, ValueError):
                    raise
                except Exception as exc:
                    raise _read_error(exc) from exc
        finally:
            conn.close()

    def can_copy_csv(self, plan: ReadPlan) -> bool:
        # SQL_ASCII text is decoded (strictly, naming the column) on the Arrow path only.
        return not self._is_sql_ascii() and all(
            f.type in _COPY_SAFE or _is_text(f.type) for f in plan.fields
        )

    def copy_csv(self, plan: ReadPlan, out: BinaryIO, on_progress: ProgressFn) -> int:
        quoted = [f.name for f in plan.fields if f.type in _COPY_QUOTED]
        force = ""
        if quoted:
            force = (
                ", FORCE_QUOTE ("
                + ", ".join(exp.to_identifier(n, quoted=True).sql("postgres") for n in quoted)
                + ")"
            )
        out.write(csv_header([f.name for f in plan.fields]))
        approx_rows = 0
        held = self._take_held()
        with held if held is not None else self._psycopg() as conn, conn.cursor() as cur:
            inner = self._select(conn, plan, _copy_sql)
            statement = f"COPY ({inner}) TO STDOUT WITH (FORMAT csv{force})"
            try:
                with cur.copy(statement) as copy:
                    for chunk in copy:
                        out.write(chunk)
                        # Progress only: a quoted value may hold newlines; the total is exact.
                        approx_rows += bytes(chunk).count(b"\n")
                        on_progress(approx_rows)
            except psycopg.Error as exc:
                raise _read_error(exc) from exc
            return int(cur.rowcount)

    def close(self) -> None:
        held = self._take_held()
        if held is not None:  # the run ended before reading its rows: end the transaction
            held.close()

    def interrupt(self) -> None:
        self._calls.interrupt()

    def _track_psycopg(self, conn: psycopg.Connection[Any]) -> None:
        def stop() -> None:
            # The server stops the query (a lock wait, a sleep) on a connection of its own, in
            # the background since the server itself may hang; shutting our socket down makes
            # the blocked read return now even then.
            _in_background(lambda: conn.cancel_safe(timeout=self._policy.connect_timeout_s))
            ref.shutdown()

        try:
            ref = SocketRef.of(conn.fileno())
            self._calls.track(stop)
        except BaseException:
            conn.close()
            raise

    def _track_adbc(self, cur: adbc_pg.Cursor) -> None:
        # ADBC gives no socket; its cancel asks the server over a connection of its own and
        # blocks meanwhile, so it runs in the background (thread-safe by the ADBC spec).
        self._calls.track(lambda: _in_background(cur.adbc_cancel))


def _one(conn: Any, sql: str) -> Any:
    """One row of a statement on a psycopg or an ADBC connection (both DB-API cursors)."""
    if isinstance(conn, psycopg.Connection):
        cursor = conn.execute(sql)
        return cursor.fetchone() if cursor.description else None
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone() if cur.description else None


def _xmax(snapshot: str) -> int:
    return int(snapshot.split(":")[1])


def _xip(snapshot: str) -> list[int]:
    listed = snapshot.split(":")[2]
    return [int(x) for x in listed.split(",")] if listed else []


def _with_subtransactions(snapshot: str, running: str) -> str | None:
    """The snapshot with the subtransaction ids of its transactions in progress (``running``:
    the ids below its xmax in progress when read, after it) added to the list of ids in
    progress, so pg_visible_in_snapshot answers for rows written under savepoints; None when
    a transaction of the list ended before ``running`` was read."""
    xmin, xmax = int(snapshot.split(":")[0]), _xmax(snapshot)
    in_progress = set(_xip(snapshot))
    still = {int(x) for x in running.split(",") if x}
    if not in_progress <= still:
        return None
    listed = sorted(in_progress | still)
    return f"{xmin}:{xmax}:{','.join(map(str, listed))}"


def _in_background(call: Callable[[], object]) -> None:
    def run() -> None:
        try:
            call()
        except Exception:  # the connection ended meanwhile, or the server is unreachable
            log.debug("cancelling a PostgreSQL query failed", exc_info=True)

    threading.Thread(target=run, name="pg-cancel", daemon=True).start()


def _clean(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
