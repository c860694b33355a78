"""Python rows (from DB-API drivers) → Arrow batches typed by the plan's logical types.

Drivers such as sqlite3 and PyMySQL return Python values whose types may vary row to row
(SQLite is dynamically typed); each column is converted against its declared logical type,
with a per-value fallback and an error that names the column and the offending value.
"""

from __future__ import annotations

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

        def to_dt(v: Any) -> Any:
            if isinstance(v, int | float):
                return datetime.fromtimestamp(v).replace(tzinfo=None)
            value = datetime.fromisoformat(str(v))
            if logical == "timestamptz" and value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value

        return to_dt
    if logical == "date":
        return lambda v: date.fromisoformat(str(v)[:10])
    if logical == "time":
        return _time
    if logical == "boolean":
        return _bool
    if logical in _INTEGERS:
        return _int
    if logical == "binary":
        return lambda v: v if isinstance(v, bytes) else str(v).encode()
    if parse_decimal(logical) is not None:
        return lambda v: Decimal(str(v))
    if logical == "decimal":  # unbounded, carried as text: plain digits, never "1E-30"
        return lambda v: format(v, "f") if isinstance(v, Decimal) else str(v)
    return str


def column_array(name: str, values: list[Any], logical: str) -> pa.Array:
    target = arrow_type(logical)
    # Typed drivers (PyMySQL) already hand out the right Python types. Not for integers:
    # pa.array([2.5], int64) truncates silently; inferring then casting safely refuses.
    if logical not in _INTEGERS:
        try:
            return pa.array(values, target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
            pass
    try:
        if logical in ("timestamp", "timestamptz", "date", "time") or parse_decimal(logical):
            strings = pa.array([None if v is None else str(v) for v in values], pa.string())
            return pc.cast(strings, target)
        # Not decimals (Arrow would print a small one as "-1E-30") nor booleans (a cast
        # makes 2 or -1 true: each value is checked below instead).
        if logical not in ("decimal", "boolean"):
            return pc.cast(pa.array(values), target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
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


def _time(value: Any) -> time:
    if isinstance(value, timedelta):  # MySQL TIME comes back as a duration
        return (datetime.min + value).time()
    return time.fromisoformat(str(value))


def _int(value: Any) -> int:
    if isinstance(value, bytes):  # MySQL BIT(n)
        return int.from_bytes(value, "big")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("not a whole number; it would lose its fraction")
    return int(value)  # int("2.5") raises: text must be a whole number too


_TRUE = frozenset({"1", "true", "t", "yes", "y"})
_FALSE = frozenset({"0", "false", "f", "no", "n"})


def _bool(value: Any) -> bool:
    if isinstance(value, bytes):  # MySQL BIT(1)
        return int.from_bytes(value, "big") != 0
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError("not a boolean (true/false, 1/0, yes/no)")
