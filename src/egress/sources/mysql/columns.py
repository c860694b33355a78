"""MySQL types as logical types, for catalog columns and result columns, and the fixes
PyMySQL's values need on their way into Arrow."""

from __future__ import annotations

from typing import Any

from pymysql.constants import FIELD_TYPE, FLAG

from egress.domain.catalog import ColumnInfo
from egress.domain.types import decimal_type
from egress.sources.base import SourceError
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
    if t in ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob") or t in GEOMETRY:
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
