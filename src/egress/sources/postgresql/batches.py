"""Arrow batches as ADBC reads them made Egress's: SQL_ASCII text decoded, infinite dates
and timestamps as sentinels, driver errors in the user's words."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from egress.domain.catalog import ColumnInfo
from egress.sources.arrow_types import can_be_infinite, with_infinities
from egress.sources.base import (
    SourceError,
)
from egress.sources.postgresql.columns import MULTIDIM, RAW_TEXT
from egress.sources.postgresql.connect import first_line

# ADBC reads 'infinity'/'-infinity' as the int64 (or int32 days) sentinels shifted from
# PostgreSQL's 2000-01-01 epoch to 1970's, wrapping around: no real value is that far back.
_PG_EPOCH_US = 946_684_800_000_000
_PG_EPOCH_DAYS = 10_957
_ADBC_INFINITY = {
    pa.int64(): (-(2**63) + _PG_EPOCH_US - 1, -(2**63) + _PG_EPOCH_US),
    pa.int32(): (-(2**31) + _PG_EPOCH_DAYS - 1, -(2**31) + _PG_EPOCH_DAYS),
}
# The marker as PostgreSQL quotes it back in its error message.
MULTIDIM_ERROR = re.compile(MULTIDIM + r':(\d+):(.*)"', re.M)


def decoded(batch: pa.RecordBatch, fields: list[ColumnInfo], codec: str) -> pa.RecordBatch:
    """The raw-text columns of a SQL_ASCII batch decoded strictly with ``codec``."""
    columns = [
        _decode(f.name, col, codec) if f.type in RAW_TEXT else col
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


def read_error(exc: BaseException) -> SourceError:
    """The driver's message, or what a multi-dimensional array means to the user."""
    match = MULTIDIM_ERROR.search(str(exc))
    if match:
        return SourceError(
            f"column {match.group(2)!r} holds a {match.group(1)}-dimensional array; only"
            " one-dimensional arrays can be exported (list<T>)"
        )
    return SourceError(first_line(exc))


def infinities(batch: pa.RecordBatch) -> pa.RecordBatch:
    """ADBC's wrapped-around infinite dates and timestamps as Egress's infinity sentinels;
    a timestamp ADBC wrapped around (past int64 microseconds from 1970) fails the read."""
    if not any(_reaches_sentinels(col) for col in batch.columns):
        return batch
    for field, col in zip(batch.schema, batch.columns, strict=True):
        if _wrapped_timestamps(col):
            raise SourceError(
                f"column {field.name!r} holds a timestamp after 294247-01-10 04:00:54.775807"
                " UTC, which the PostgreSQL driver cannot read; filter it out with a whereClause"
            )
    columns = [_column_infinities(col) for col in batch.columns]
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def _reaches_sentinels(col: pa.Array) -> bool:
    """Whether a date/timestamp column's smallest value is as low as ADBC's sentinels (all of
    them, and every wrapped-around timestamp, sit at the bottom of the storage's range): one
    pass that spares the common batch the checks below."""
    if pa.types.is_list(col.type):
        return _reaches_sentinels(col.flatten())
    if not can_be_infinite(col.type):
        return False
    storage_type = pa.int64() if pa.types.is_timestamp(col.type) else pa.int32()
    lowest = pc.min(col.view(storage_type)).as_py()
    return lowest is not None and lowest <= max(_ADBC_INFINITY[storage_type])


def _wrapped_timestamps(col: pa.Array) -> bool:
    """Values below ADBC's +infinity: real ones (4713 BC onwards) never are, a timestamp
    whose microseconds from 1970 overflow int64 wraps around to there."""
    if pa.types.is_list(col.type):
        return _wrapped_timestamps(col.flatten())
    if not pa.types.is_timestamp(col.type):
        return False
    storage = col.view(pa.int64())
    return pc.any(pc.less(storage, _ADBC_INFINITY[pa.int64()][0])).as_py() is True


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
