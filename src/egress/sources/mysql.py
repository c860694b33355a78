"""MySQL and MariaDB over PyMySQL with an unbuffered (server-side) cursor: rows stream in
batches, never a whole result in memory."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, Literal

import pyarrow as pa
import pymysql
import pymysql.cursors
from pydantic import BaseModel, ConfigDict, Field
from pymysql.constants import FIELD_TYPE, FLAG

from egress.domain.catalog import ColumnInfo, TableInfo
from egress.domain.plan import ReadPlan
from egress.domain.types import decimal_type
from egress.query.custom import probe_statement
from egress.query.select import Statement, max_statement, select_statement
from egress.sources import base
from egress.sources.arrow_types import arrow_schema
from egress.sources.base import QueryError, SourceError
from egress.sources.policy import SourcePolicy
from egress.sources.rows import ColumnFix, rows_to_batch

# "Query execution was interrupted": MariaDB's max_statement_time, MySQL's max_execution_time.
_STATEMENT_TIMEOUT = 1969
_EXECUTION_TIMEOUT = 3024
_SYSTEM = ("information_schema", "mysql", "performance_schema", "sys")
# Named placeholders as sqlglot renders them for MySQL, and any other '%' in the text.
_PLACEHOLDER = re.compile(r":(p\d+)\b")

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


def _sql(statement: Statement) -> tuple[str, dict[str, Any]]:
    """sqlglot's ``:p0`` placeholders as PyMySQL's ``%(p0)s``; other '%' escaped."""
    text = statement.sql.replace("%", "%%")
    return _PLACEHOLDER.sub(r"%(\1)s", text), statement.params


class MysqlSource:
    dialect = "mysql"

    def __init__(
        self, settings: MysqlSettings, secrets: dict[str, str], policy: SourcePolicy
    ) -> None:
        self._policy = policy
        self._s = settings
        self._password = secrets.get("password", "")

    def _connect(self, unbuffered: bool = False) -> pymysql.connections.Connection[Any]:
        ssl: dict[str, Any] | None = None
        if self._s.ssl or self._s.ssl_ca:
            ssl = {"ca": self._s.ssl_ca} if self._s.ssl_ca else {"check_hostname": False}
        try:
            conn = pymysql.connect(
                host=self._s.host,
                port=self._s.port,
                user=self._s.user,
                password=self._password,
                database=self._s.database,
                charset="utf8mb4",
                connect_timeout=self._s.connect_timeout,
                ssl=ssl,
                cursorclass=(pymysql.cursors.SSCursor if unbuffered else pymysql.cursors.Cursor),
                init_command="SET time_zone = '+00:00'",
            )
            # Egress only reads: a SQL template calling a function that writes fails instead.
            with conn.cursor() as cur:
                cur.execute("SET SESSION TRANSACTION READ ONLY")
        except pymysql.Error as exc:
            raise SourceError(_clean(exc)) from exc
        return conn

    def check(self) -> None:
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")

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
        with self._connect() as conn, conn.cursor() as cur:
            try:  # MariaDB's limit, in seconds (MySQL's max_execution_time covers SELECTs only)
                cur.execute("SET SESSION max_statement_time = %s", (base.PROBE_TIMEOUT_S,))
            except pymysql.Error:
                cur.execute(
                    "SET SESSION max_execution_time = %s", (int(base.PROBE_TIMEOUT_S * 1000),)
                )
            try:
                cur.execute(probe_statement(query, self.dialect))
            except pymysql.err.OperationalError as exc:
                slow = exc.args[0] in (_STATEMENT_TIMEOUT, _EXECUTION_TIMEOUT)
                raise QueryError(base.probe_too_slow() if slow else _clean(exc)) from exc
            except pymysql.Error as exc:
                raise QueryError(_clean(exc)) from exc
            # The description lacks the unsigned flag and the character set; the field
            # descriptors of the result carry both.
            return [result_column(f, self._s.tinyint1AsBoolean) for f in cur._result.fields]

    def max_value(self, plan: ReadPlan, field: str) -> Any:
        try:
            with self._connect() as conn, conn.cursor() as cur:
                cur.execute(max_statement(plan, field, "mysql"))
                row = cur.fetchone()
        except pymysql.Error as exc:
            raise SourceError(_clean(exc)) from exc
        return row[0] if row else None

    def read(self, plan: ReadPlan, batch_rows: int) -> Iterator[pa.RecordBatch]:
        schema = arrow_schema(plan.fields)
        sql, params = _sql(select_statement(plan, "mysql"))
        conn = self._connect(unbuffered=True)
        try:
            with conn.cursor() as cur:
                try:
                    cur.execute(sql, params)
                    fixes = column_fixes(cur.description, plan.fields, self._s)
                    while rows := cur.fetchmany(batch_rows):
                        yield rows_to_batch(rows, plan.fields, schema, fixes)
                except pymysql.Error as exc:
                    raise SourceError(_clean(exc)) from exc
        finally:
            conn.close()

    def close(self) -> None:
        return None


def _clean(exc: BaseException) -> str:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) == 2 and isinstance(args[1], str):
        return f"{args[1]} (MySQL error {args[0]})"
    return str(exc) or type(exc).__name__
