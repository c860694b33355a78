"""Python rows (from DB-API drivers) → Arrow batches typed by the plan's logical types.

Drivers such as sqlite3 and PyMySQL return Python values whose types may vary row to row
(SQLite is dynamically typed); each column is converted against its declared logical type,
with a per-value fallback and an error that names the column and the offending value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from egress.domain.catalog import ColumnInfo
from egress.domain.types import parse_decimal
from egress.sources.arrow_types import arrow_type
from egress.sources.base import SourceError

_INTEGERS = frozenset({"int16", "int32", "int64"})


# A source's own rule for one column's raw values (e.g. MySQL's zero dates), by position.
ColumnFix = Callable[[str, list[Any]], list[Any]]
# What a value of a fixed-width type (a number, a date, a boolean) weighs, about, in Python.
_SCALAR_BYTES = 8
# Logical types whose values are fixed-width; any other (text, bytes, JSON, lists) is measured.
_FIXED_WIDTH = frozenset(
    {"boolean", "int16", "int32", "int64", "float32", "float64"}
    | {"date", "time", "timestamp", "timestamptz", "duration", "uuid"}
)


def _width(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | bytearray) else _SCALAR_BYTES


def bounded_rows(
    rows: Iterable[Sequence[Any]],
    fields: list[ColumnInfo],
    batch_rows: int,
    batch_bytes: int | None,
) -> Iterator[list[Sequence[Any]]]:
    """A DB-API cursor's rows in lists of at most ``batch_rows`` rows; with ``batch_bytes``, a
    list also ends as soon as its values reach about that many bytes (text and bytes by their
    length), so it holds at most one row more than the bound: a 50 MB value is a list of its
    own."""
    measured = [i for i, f in enumerate(fields) if f.type not in _FIXED_WIDTH]
    fixed = _SCALAR_BYTES * (len(fields) - len(measured))
    batch: list[Sequence[Any]] = []
    size = 0
    for row in rows:
        batch.append(row)
        if batch_bytes is not None:
            size += fixed + sum(_width(row[i]) for i in measured)
        if len(batch) >= batch_rows or (batch_bytes is not None and size >= batch_bytes):
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def rows_to_batch(
    rows: Sequence[Sequence[Any]],
    fields: list[ColumnInfo],
    schema: pa.Schema,
    fixes: Mapping[int, ColumnFix] | None = None,
) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True))
    arrays = []
    for i, (f, col) in enumerate(zip(fields, columns, strict=True)):
        values = list(col)
        if fixes and i in fixes:
            values = fixes[i](f.name, values)
        arrays.append(column_array(f.name, values, f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _parse_python(logical: str) -> Callable[[Any], Any]:
    """Per-value fallback when a column's stored values need more than an Arrow cast."""
    if logical in ("timestamp", "timestamptz"):
        return lambda v: read_timestamp(v, logical == "timestamptz")
    if logical == "date":
        return _date
    if logical == "time":
        return _time
    if logical == "boolean":
        return _bool
    if logical in _INTEGERS:
        return _int
    if logical == "binary":
        return lambda v: v if isinstance(v, bytes) else str(v).encode()
    if parse_decimal(logical) is not None:
        return _decimal
    if logical == "decimal":  # unbounded, carried as text: plain digits, never "1E-30"
        return lambda v: format(v, "f") if isinstance(v, Decimal) else _text(v)
    return _text


def column_array(name: str, values: list[Any], logical: str) -> pa.Array:
    target = arrow_type(logical)
    array = _by_arrow(values, logical, target)
    if array is not None:
        return array
    parse = _parse_python(logical)
    parsed = []
    for value in values:
        try:
            parsed.append(None if value is None else parse(value))
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise SourceError(
                f"column {name!r} is declared {logical} but holds {value!r}: {exc}"
            ) from exc
    try:
        return pa.array(parsed, target)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SourceError(f"column {name!r} does not fit {logical}: {exc}") from exc


_TEMPORAL = frozenset({"date", "time", "timestamp", "timestamptz"})
# Carried as text: a column of Python str only is taken as it is; any other value (a number,
# an unbounded Decimal, bytes, which are refused) is converted value by value.
_TEXT = frozenset({"string", "json", "uuid", "decimal"})
# What Python values, as Arrow infers them, a temporal column takes from Arrow as they are.
_TYPED: dict[str, Callable[[pa.DataType], bool]] = {
    "date": pa.types.is_date32,
    "time": pa.types.is_time64,
    "timestamp": lambda t: pa.types.is_timestamp(t) and t.tz is None,
    "timestamptz": pa.types.is_timestamp,  # a naive one is UTC, as _timestamp reads it
}
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError)


def _by_arrow(values: list[Any], logical: str, target: pa.DataType) -> pa.Array | None:
    """The column as Arrow converts it when that is exact; None: convert value by value.

    Arrow takes liberties with some Python values: ``pa.array(values, target)`` reads an int
    as days or microseconds in a date or timestamp and bytes as text, and a cast parses text
    '0x10' as 16 and bytes b'12' as 12. So for these types the values' own Python types, as
    Arrow infers them (one type for the column, or an error when they are mixed, as SQLite's
    may be), decide whether Arrow may convert them: the same rule for every batch."""
    if logical in _INTEGERS or logical in _TEMPORAL or logical in _TEXT:
        try:
            inferred = pa.array(values)
        except (*_ARROW_ERRORS, OverflowError):
            return None
        kind = inferred.type
        try:
            if pa.types.is_null(kind):
                return pa.nulls(len(values), target)
            if logical in _INTEGERS:  # a safe cast refuses 2.5 and what overflows
                numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
                return pc.cast(inferred, target) if numeric else None
            if logical in _TEXT:
                return inferred if pa.types.is_string(kind) else None
            if pa.types.is_string(kind):  # ISO text: Arrow's parser refuses what it cannot keep
                return pc.cast(inferred, target)
            if pa.types.is_integer(kind):
                return _unix_integers(inferred, logical, target)
            # Dates and times from typed drivers; numbers never as Arrow's counts (see _unix).
            return pa.array(values, target) if _TYPED[logical](kind) else None
        except _ARROW_ERRORS:
            return None
    # Typed drivers (PyMySQL) already hand out the right Python types.
    try:
        return pa.array(values, target)
    except _ARROW_ERRORS:
        pass
    try:
        if parse_decimal(logical):
            strings = pa.array([None if v is None else str(v) for v in values], pa.string())
            return pc.cast(strings, target)
        # Not booleans: a cast makes 2 or -1 true (each value is checked instead).
        if logical != "boolean":
            return pc.cast(pa.array(values), target)
    except _ARROW_ERRORS:
        pass
    return None


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):  # str() would make b'\x00' of it
        raise TypeError("bytes, not text")
    return str(value)


# Digits beyond the sixth of a fraction that are not all zeros: Python's fromisoformat would
# drop them, and Arrow keeps microseconds.
_SUB_MICROSECOND = re.compile(r"[.,]\d{6}0*[1-9]")


def _iso(value: Any) -> str:
    """ISO 8601 text that Python parses exactly."""
    text = _text(value)
    if _SUB_MICROSECOND.search(text):
        raise ValueError("finer than a microsecond")
    return text


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The Julian day numbers of years 1-9999, from the first up to (not with) the second: SQLite's
# own date functions read a number as one, so a number in this range (as unix seconds, 20 Jan
# to 4 Mar 1970) is ambiguous. (SQLite's 'auto' modifier splits numbers at the same bound.)
_JULIAN_DAYS = (1721425.5, 5373484.5)


def _unix(value: float) -> datetime:
    """Unix seconds in UTC, exact to the microsecond: an INTEGER or REAL in a SQLite date or
    time column (the convention of its 'unixepoch' modifier)."""
    if not math.isfinite(value):
        raise ValueError("not a finite number of unix seconds")
    if _JULIAN_DAYS[0] <= value < _JULIAN_DAYS[1]:
        raise ValueError(
            "ambiguous: unix seconds in early 1970 or a Julian day number; convert it in a SQL"
            " template (e.g. datetime(x, 'unixepoch') or datetime(x))"
        )
    # A REAL by its shortest round-trip decimal (repr): 1700000000.1, not the binary float's
    # 1700000000.099999904…, so it holds whole microseconds as written.
    micros = Decimal(repr(value)) * 1_000_000
    if micros != micros.to_integral_value():
        raise ValueError("unix seconds finer than a microsecond")
    try:
        return _EPOCH + timedelta(microseconds=int(micros))
    except OverflowError:
        raise ValueError("unix seconds outside the years 1-9999") from None


# The unix seconds of 0001-01-01 00:00:00 and 9999-12-31 23:59:59.
_UNIX_YEARS = (-62_135_596_800, 253_402_300_799)
_DAY = 86_400


def _unix_integers(seconds: pa.Array, logical: str, target: pa.DataType) -> pa.Array | None:
    """A column of integers read as _unix reads each, at Arrow's speed; None when one of them
    is not exact (or in a TIME column), for _unix to name it."""
    bounds = pc.min_max(seconds)
    if logical == "time" or bounds["min"].as_py() < _UNIX_YEARS[0]:
        return None
    julian = pc.and_(
        pc.greater_equal(seconds, math.ceil(_JULIAN_DAYS[0])),
        pc.less_equal(seconds, math.floor(_JULIAN_DAYS[1])),
    )
    if bounds["max"].as_py() > _UNIX_YEARS[1] or pc.any(julian).as_py():
        return None
    if logical != "date":
        return pc.multiply(seconds, 1_000_000).cast(target)
    days = pc.divide(seconds, _DAY)  # truncated: a day's multiple comes back whole
    if not pc.all(pc.equal(pc.multiply(days, _DAY), seconds)).as_py():
        return None
    return days.cast(pa.int32()).cast(target)


def read_timestamp(value: Any, tz: bool) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float):
        moment = _unix(value)
    else:
        moment = datetime.fromisoformat(_iso(value))
    if tz:  # text without an offset is in UTC
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if moment.utcoffset():  # Arrow would shift it to UTC and drop the offset
        raise ValueError("a UTC offset, which a timestamp without time zone cannot hold")
    return moment.replace(tzinfo=None)


def _date(value: Any) -> date:
    """A date, or a date-time that is exactly a midnight: text without an offset, unix
    seconds in UTC. Any other time of day would be dropped."""
    if isinstance(value, int | float):
        moment = _unix(value)
        if moment.time() != time():
            raise ValueError("unix seconds that are not a midnight UTC: the time would be lost")
        return moment.date()
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(_iso(value))
    if moment.tzinfo is not None or moment.time() != time():
        raise ValueError("not a plain date: its time of day or UTC offset would be lost")
    return moment.date()


def _time(value: Any) -> time:
    if isinstance(value, timedelta):  # MySQL TIME comes back as a duration
        return (datetime.min + value).time()
    if isinstance(value, int | float):  # seconds since midnight? a fraction of a day? unknown
        raise TypeError("a number is not a time of day (store 'HH:MM:SS' text)")
    parsed = time.fromisoformat(_iso(value))
    if parsed.tzinfo is not None:  # Arrow's time64 would drop it
        raise ValueError("a UTC offset, which a time of day cannot hold")
    return parsed


# Integer text: ASCII digits with an optional sign (int() would also take '1_000', ' 12 ').
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_INT64 = (-(2**63), 2**63 - 1)


def _int(value: Any) -> int:
    if isinstance(value, bytes):  # MySQL BIT(n) (a SQLite BLOB is refused before: sqlite.py)
        return int.from_bytes(value, "big")
    if isinstance(value, str):
        if not _INTEGER_TEXT.fullmatch(value):
            raise ValueError("not an integer (digits with an optional sign)")
        number = int(value)
    elif isinstance(value, float | Decimal):
        number = int(value)  # NaN and infinity raise
        if number != value:
            raise ValueError("not a whole number; it would lose its fraction")
    else:
        number = int(value)
    if not _INT64[0] <= number <= _INT64[1]:
        raise ValueError("beyond 64-bit integers")
    return number


# Decimal text as Arrow's parser takes it (Decimal() would also take '1_000', ' 12 ', '١٢').
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    text = _text(value)  # a REAL by its shortest decimal (repr)
    if not _DECIMAL_TEXT.fullmatch(text):
        raise ValueError("not a decimal number (digits with an optional sign, point, exponent)")
    return Decimal(text)


_TRUE = frozenset({"1", "true", "t", "yes", "y"})
_FALSE = frozenset({"0", "false", "f", "no", "n"})


def _bool(value: Any) -> bool:
    if isinstance(value, bytes):  # MySQL BIT(1)
        return int.from_bytes(value, "big") != 0
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError("not a boolean (true/false, 1/0, yes/no)")
