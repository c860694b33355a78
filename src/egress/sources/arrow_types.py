"""Logical types ↔ Arrow types, and conforming source batches to the plan's schema."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pyarrow as pa
import pyarrow.compute as pc

from egress.domain.catalog import ColumnInfo
from egress.domain.types import decimal_type, parse_decimal, parse_list

_SIMPLE: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "decimal": pa.string(),
    "string": pa.string(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "duration": pa.duration("us"),
    "binary": pa.binary(),
    "json": pa.string(),
    "uuid": pa.string(),
}


def arrow_type(logical: str) -> pa.DataType:
    dec = parse_decimal(logical)
    if dec is not None:
        return pa.decimal128(*dec)
    element = parse_list(logical)
    if element is not None:
        return pa.list_(arrow_type(element))
    return _SIMPLE[logical]


# PostgreSQL's 'infinity' and '-infinity' dates and timestamps travel in Arrow as the extreme
# values of the storage type (no real date comes near them); each format renders or refuses them.
_INFINITY: dict[pa.DataType, tuple[int, int]] = {
    pa.int64(): (2**63 - 1, -(2**63)),
    pa.int32(): (2**31 - 1, -(2**31)),
}


def can_be_infinite(t: pa.DataType) -> bool:
    return bool(pa.types.is_timestamp(t) or pa.types.is_date32(t))


def infinity_masks(col: pa.Array) -> tuple[pa.Array, pa.Array] | None:
    """Where a date/timestamp column holds +infinity and -infinity; None when it holds neither."""
    storage = col.view(pa.int64() if pa.types.is_timestamp(col.type) else pa.int32())
    high, low = _INFINITY[storage.type]
    # One pass for the common answer, "neither": the sentinels are the storage's extremes.
    bounds = pc.min_max(storage)
    lowest, highest = bounds["min"].as_py(), bounds["max"].as_py()
    if lowest is None or (lowest != low and highest != high):
        return None
    positive = pc.fill_null(pc.equal(storage, high), False)
    negative = pc.fill_null(pc.equal(storage, low), False)
    if not (pc.any(positive).as_py() or pc.any(negative).as_py()):
        return None
    return positive, negative


def with_infinities(col: pa.Array, positive: pa.Array, negative: pa.Array) -> pa.Array:
    """``col`` with the masked values set to +/-infinity (the inverse of ``infinity_masks``)."""
    storage_type = pa.int64() if pa.types.is_timestamp(col.type) else pa.int32()
    high, low = _INFINITY[storage_type]
    storage = col.view(storage_type)
    storage = pc.if_else(positive, pa.scalar(high, storage_type), storage)
    storage = pc.if_else(negative, pa.scalar(low, storage_type), storage)
    return storage.view(col.type)


def first_infinity(col: pa.Array) -> str | None:
    """'infinity' or '-infinity' when the column (or a list's items) holds either."""
    if pa.types.is_list(col.type):
        return first_infinity(col.flatten())
    if not can_be_infinite(col.type):
        return None
    masks = infinity_masks(col)
    if masks is None:
        return None
    first_positive = pc.index(masks[0], True).as_py()
    first_negative = pc.index(masks[1], True).as_py()
    if first_negative < 0 or 0 <= first_positive < first_negative:
        return "infinity"
    return "-infinity"


# Years as days from 1970, [first, end): those Arrow writes as text (beyond, its text is
# "<value out of range: …>") and those Python's datetime holds.
TEXT_YEARS = (-12_687_428, 11_248_738)  # -32767-01-01, 32768-01-01
PYTHON_YEARS = (-719_162, 2_932_897)  # 0001-01-01, 10000-01-01
_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}


def column_outside_years(batch: pa.RecordBatch, years: tuple[int, int]) -> str | None:
    """The first column holding a finite date/timestamp outside ``years`` (``TEXT_YEARS`` or
    ``PYTHON_YEARS``), or None."""
    for field, col in zip(batch.schema, batch.columns, strict=True):
        if _outside_years(col, years):
            return str(field.name)
    return None


def _outside_years(col: pa.Array, years: tuple[int, int]) -> bool:
    if pa.types.is_list(col.type):
        return _outside_years(col.flatten(), years)
    if not can_be_infinite(col.type):
        return False
    timestamp = pa.types.is_timestamp(col.type)
    storage = col.view(pa.int64() if timestamp else pa.int32())
    per_day = _PER_DAY[col.type.unit] if timestamp else 1
    # Clamped to the storage's range: nanoseconds never reach these years.
    first, end = (max(min(d * per_day, 2**63 - 1), -(2**63)) for d in years)
    high, low = _INFINITY[storage.type]
    outside = pc.or_(
        pc.and_(pc.less(storage, first), pc.not_equal(storage, low)),
        pc.and_(pc.greater_equal(storage, end), pc.not_equal(storage, high)),
    )
    return pc.any(outside).as_py() is True


def day_end(t: pa.DataType) -> int:
    """24:00:00 in a time type's unit: PostgreSQL's end of a day (``time '24:00'``), which
    Arrow's text of a time (and its validation) puts out of range."""
    return _PER_DAY[t.unit]


def time_ticks(col: pa.Array) -> pa.Array | None:
    """A time column's (or a list's items') values as integers in its unit; None otherwise."""
    if pa.types.is_list(col.type):
        return time_ticks(col.flatten())
    if not pa.types.is_time(col.type):
        return None
    return col.view(pa.int64() if col.type.bit_width == 64 else pa.int32())


def column_past_day(batch: pa.RecordBatch, *, end: bool) -> str | None:
    """The first time column holding a time of day outside 00:00:00 to 24:00:00, or (``end``)
    24:00:00 itself; None if none does."""
    for field, col in zip(batch.schema, batch.columns, strict=True):
        ticks = time_ticks(col)
        if ticks is None:
            continue
        item = col.type.value_type if pa.types.is_list(col.type) else col.type
        last = day_end(item) - (1 if end else 0)
        bounds = pc.min_max(ticks)
        lowest, highest = bounds["min"].as_py(), bounds["max"].as_py()
        if lowest is not None and (lowest < 0 or highest > last):
            return str(field.name)
    return None


def logical_from_arrow(t: pa.DataType) -> str:
    """The logical type of an Arrow type a driver or file reader reports (best fit)."""
    # Canonical extension types (arrow.uuid, arrow.bool8, arrow.json) are BaseExtensionTypes,
    # not ExtensionTypes: each is read as its storage, a UUID as its text.
    if is_uuid(t):
        return "uuid"
    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.bool8":
            return "boolean"
        t = t.storage_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return "int16"
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return "int32"
    if pa.types.is_uint64(t):  # past int64 from 2^63 (hashes): exact as MySQL's BIGINT UNSIGNED
        return "decimal(20,0)"
    if pa.types.is_integer(t):
        return "int64"
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return "float32"
    if pa.types.is_floating(t):
        return "float64"
    if pa.types.is_decimal(t):
        return decimal_type(t.precision, t.scale)
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_duration(t):
        return "duration"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    if pa.types.is_nested(t):
        return "json"
    return "string"


def is_uuid(t: pa.DataType) -> bool:
    return isinstance(t, pa.BaseExtensionType) and t.extension_name == "arrow.uuid"


def uuid_text(col: pa.Array) -> pa.Array:
    """An ``arrow.uuid`` column as the text PostgreSQL writes a uuid in (lowercase 8-4-4-4-12),
    not its 16 bytes taken for text."""
    return pa.array(
        [None if b is None else str(UUID(bytes=b)) for b in col.storage.to_pylist()], pa.string()
    )


def arrow_schema(fields: list[ColumnInfo]) -> pa.Schema:
    return pa.schema(
        [
            pa.field(f.name, arrow_type(f.type), nullable=True, metadata={"egress.type": f.type})
            for f in fields
        ]
    )


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Cast each column of a source batch to the plan's type (extension types unwrapped)."""
    columns = []
    for i, target in enumerate(schema):
        col = batch.column(i)
        if is_uuid(col.type):
            col = uuid_text(col)
        elif isinstance(col.type, pa.BaseExtensionType):
            col = col.storage
        if not col.type.equals(target.type):
            try:
                col = pc.cast(col, target.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ValueError(
                    f"column {target.name!r}: cannot convert to {target.type}: {exc}"
                ) from exc
        columns.append(col)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def byte_slices(batch: pa.RecordBatch, batch_bytes: int) -> Iterator[pa.RecordBatch]:
    """``batch`` as zero-copy slices of about ``batch_bytes`` each (one row at least)."""
    size = batch.nbytes
    if size <= batch_bytes or batch.num_rows <= 1:
        yield batch
        return
    step = max(1, batch.num_rows * batch_bytes // size)
    for offset in range(0, batch.num_rows, step):
        yield batch.slice(offset, step)
