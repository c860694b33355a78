"""MySQL types as logical types, for catalog columns and result columns, how a run selects
each column, and the fixes PyMySQL's values need on their way into Arrow."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pymysql.constants import FIELD_TYPE, FLAG
from sqlglot import exp

from egress.domain.catalog import ColumnInfo
from egress.domain.plan import ReadPlan
from egress.domain.types import decimal_type
from egress.query.select import plain_column
from egress.sources.base import SourceError
from egress.sources.marks import mark_statement
from egress.sources.mysql.settings import MysqlSettings
from egress.sources.rows import ColumnFix

GEOMETRY = frozenset(
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
        bits = _bits(full)
        if bits == 1:
            return "boolean"
        # BIT(64) reaches 2^64 - 1, as BIGINT UNSIGNED does.
        return "decimal(20,0)" if bits > 63 else "int64"
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
    if t in ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob") or t in GEOMETRY:
        return "binary"  # geometries as standard WKB (the SRID prefix is dropped)
    return "string"  # char, varchar, text, enum, set, …


# Types kept as a column's ``native``: read as text like any string, but sorted by their
# declared position (an ENUM) or members' bits (a SET), not as text (domain.export).
ORDERED_AS_NUMBERS = frozenset({"enum", "set"})


def native_type(data_type: str) -> str | None:
    t = data_type.lower()
    return t if t in ORDERED_AS_NUMBERS else None


def _bits(column_type: str) -> int:
    """BIT(n)'s n (a bare BIT is BIT(1))."""
    found = re.fullmatch(r"bit\((\d+)\)", column_type)
    return int(found.group(1)) if found else 1


def column_sql(field: ColumnInfo) -> exp.Expr:
    """What a run selects for a column. The text protocol writes a FLOAT with 6 significant
    digits (16777217, stored as 16777216, comes as "16777200"): it is widened to DOUBLE, whose
    text is the stored single exactly, and made float32 again without loss (a SQL template's
    FLOAT result too: its query is wrapped). ``* 1e0`` rather than CAST(… AS DOUBLE), which
    MySQL only has from 8.0.17 (and ``+ 0e0`` would make -0 0); filters, keys and ORDER BY
    still use the column itself."""
    col = plain_column(field)
    if field.type == "float32":
        return exp.Mul(this=col, expression=exp.Literal.number("1e0"))
    return col


def max_sql(plan: ReadPlan, field: str) -> str:
    """The cursor's maximum, a FLOAT's widened as ``column_sql`` widens it: its 6-digit text
    put the mark below the stored maximum (3.40282e38 for 3.4028234663852886e38), and the row
    holding it fell out of every window; an integer's ``+ 0``, which a BIT column's maximum
    (its bytes: the mark was their hex, and runs after the first took nothing) needs to be a
    number and any other integer leaves as it is. With it the records whose cursor is NULL
    (``marks.mark_statement``: columns high, nulls)."""
    logical = plan.column_type(field)

    def exact(node: exp.Expr) -> exp.Expr:
        if logical == "float32":
            return exp.Mul(this=node, expression=exp.Literal.number("1e0"))
        if logical in _INTEGERS:
            return exp.Add(this=node, expression=exp.Literal.number(0))
        return node

    return mark_statement(plan, field, "mysql", exact=exact)


# The logical types of MySQL's integer columns, BIT(n > 1) among them (``logical_type``).
_INTEGERS = frozenset({"int16", "int32", "int64", "decimal(20,0)"})

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


# The date types' Arrow types, whose casts read ISO text (year 0 too).
_DATE_TYPES = {
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}


def _iso(value: date | str, logical: str) -> str:
    """A value of a date column as ISO text (PyMySQL's timestamps are naive: in UTC, the
    session's time zone)."""
    text = value.isoformat(" ") if isinstance(value, datetime) else str(value)
    return text + "Z" if logical == "timestamptz" else text


def _is_date(text: str, logical: str) -> bool:
    """Whether Arrow reads the text as a date: a zero or invalid one ('0000-00-00',
    '2026-02-30') it refuses, a year-0 one ('0000-01-01') it reads, as libmysqlclient's path
    casts a whole column."""
    try:
        pc.cast(pa.array([text], pa.string()), _DATE_TYPES[logical])
    except pa.ArrowInvalid:
        return False
    return True


def _zero_dates(mode: str, logical: str) -> ColumnFix:
    """PyMySQL hands out a date it cannot build as its text: a zero or invalid one
    ('0000-00-00', '2026-02-30'), which becomes NULL or fails the run (``zeroDates``), but also
    a real one in year 0 ('0000-01-01': Python's dates start at year 1). The column then goes
    on as ISO text, the one form that holds both year 0 and Python's dates and that Arrow's
    cast reads exactly (a number would be read as a count of seconds)."""

    def fix(name: str, values: list[Any]) -> list[Any]:
        if not any(isinstance(v, str) for v in values):
            return values
        out: list[str | None] = []
        for v in values:
            text = None if v is None else _iso(v, logical)
            if isinstance(v, str) and text is not None and not _is_date(text, logical):
                if mode == "fail":
                    raise SourceError(
                        f"column {name!r} holds the zero or invalid date {v!r}; set the"
                        ' connection\'s zeroDates to "null" to read such dates as NULL'
                    )
                text = None
            out.append(text)
        return out

    return fix


def _strict_tinyint1(name: str, values: list[Any]) -> list[Any]:
    bad = next((v for v in values if v is not None and v not in (0, 1)), None)
    if bad is not None:
        raise SourceError(
            f"column {name!r} is TINYINT(1), read as boolean, but holds {bad}; set the"
            " connection's tinyint1AsBoolean to false to read it as an integer"
        )
    return values


_INT64_MAX = 2**63 - 1


def _bit_integers(logical: str) -> ColumnFix:
    """BIT(n) comes as n bits in big-endian bytes: its integer. BIT(64) is decimal(20,0); a
    template discovered before that (int64) fails on a value past int64 rather than wrap."""

    def fix(name: str, values: list[Any]) -> list[Any]:
        out = [None if v is None else int.from_bytes(v, "big") for v in values]
        if logical == "int64":
            bad = next((v for v in out if v is not None and v > _INT64_MAX), None)
            if bad is not None:
                raise SourceError(
                    f"column {name!r} is read as int64 but holds the BIT value {bad}; list"
                    " the connection's templates again (a BIT(64) column is decimal(20,0))"
                )
        return out

    return fix


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
        if type_code in _DATES and field.type in _DATE_TYPES:
            fixes[i] = _zero_dates(settings.zeroDates, field.type)
        elif type_code == FIELD_TYPE.BIT and field.type != "boolean":
            fixes[i] = _bit_integers(field.type)
        elif type_code == FIELD_TYPE.GEOMETRY:
            fixes[i] = _wkb
        elif type_code == FIELD_TYPE.TINY and field.type == "boolean":
            fixes[i] = _strict_tinyint1
    return fixes
