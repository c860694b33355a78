"""Data file formats: which name is which format, how Arrow reads each one, the exact type
of a CSV column, and the shape of a folder's shared schema."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from egress.domain.catalog import ColumnInfo
from egress.sources.arrow_types import logical_from_arrow

# Suffix → pyarrow.dataset format; ".gz" on top is decompressed transparently.
_FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "json",
    ".ndjson": "json",
}
CSV_ROW = re.compile(r"Row #(\d+)")
# A number written plainly: digits with an optional decimal point, no exponent.
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d*)(?:\.(\d*))?$")
_LEADING_ZERO = re.compile(r"^[+-]?0\d")
# A float64 holds every decimal number of up to 15 significant digits exactly (round trip).
_FLOAT_DIGITS = 15
JSON_ROW = re.compile(r"in row (\d+)")


@dataclass(frozen=True)
class DataFile:
    path: str  # relative to the connection's root, "/"-separated
    format: str  # csv | parquet | json
    version: tuple[int | None, int | None] = (None, None)  # size, mtime_ns: a new file when changed


def data_format(name: str) -> str | None:
    lower = name.lower().removesuffix(".gz")
    return next((fmt for suffix, fmt in _FORMATS.items() if lower.endswith(suffix)), None)


def gzipped_parquet(file: DataFile) -> bool:
    return file.format == "parquet" and file.path.lower().endswith(".gz")


def shared_schema(members: list[tuple[DataFile, pa.Schema | None]]) -> pa.Schema | None:
    """One schema for a folder's files: all readable, same format, same columns, types that
    widen into one another (int32 and int64, int and float, an all-empty CSV column and
    anything)."""
    schemas = [schema for _, schema in members if schema is not None]
    if len(schemas) != len(members):
        return None
    formats = {f.format for f, _ in members}
    names = {tuple(schema.names) for schema in schemas}
    if len(formats) != 1 or len(names) != 1:
        return None
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def file_version(info: pafs.FileInfo) -> tuple[int | None, int | None]:
    return info.size, info.mtime_ns


def columns_of(schema: pa.Schema) -> list[ColumnInfo]:
    return [ColumnInfo(f.name, logical_from_arrow(f.type), f.nullable) for f in schema]


def is_float(t: pa.DataType) -> bool:
    return bool(pa.types.is_floating(t))


def exact_type(inferred: pa.DataType, values: list[str]) -> pa.DataType:
    """The type for a CSV column Arrow inferred as ``inferred`` (an integer or float type) from
    ``values`` (its non-NULL texts), such that every value keeps its exact value: a leading
    zero (``01234``) keeps the column text, integers beyond int64 are ``decimal(38,0)``, numbers
    written with a decimal point are ``decimal(38,s)`` with the largest scale seen, and only
    exponents, ``nan`` and ``inf`` make a float — of at most 15 significant digits."""
    if any(_LEADING_ZERO.match(v) for v in values):
        return pa.string()
    if pa.types.is_integer(inferred):
        return inferred
    plain = [m for v in values if (m := _PLAIN_NUMBER.match(v)) and any(map(str.isdigit, v))]
    if len(plain) == len(values):
        scale = max((len(m.group(2) or "") for m in plain), default=0)
        whole = max((len(m.group(1)) for m in plain), default=1)
        return pa.decimal128(38, scale) if whole + scale <= 38 else pa.string()
    if any(_significant_digits(v) > _FLOAT_DIGITS for v in values):
        return pa.string()
    return inferred


def _significant_digits(text: str) -> int:
    mantissa = re.split(r"[eE]", text, maxsplit=1)[0]
    return len(mantissa.lstrip("+-").replace(".", "").lstrip("0"))


def csv_convert(null_values: tuple[str, ...]) -> pcsv.ConvertOptions:
    """Only an empty field is NULL (plus the connection's own spellings), and a quoted ""
    is the empty string: the rule Egress writes by. Arrow's default also reads NA, N/A,
    null, NULL, nan, #N/A… as NULL, which would erase Namibia's country code."""
    return pcsv.ConvertOptions(
        null_values=["", *null_values],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )


def file_format(fmt: str, schema: pa.Schema | None, null_values: tuple[str, ...]) -> ds.FileFormat:
    """The dataset format; ``schema`` (the template's types) when reading, None to infer."""
    if fmt == "csv":
        convert = csv_convert(null_values)
        if schema is not None:  # read every column as its template type, never re-inferred
            convert.column_types = {f.name: f.type for f in schema}
        return ds.CsvFileFormat(convert_options=convert)
    if fmt == "json":
        return ds.JsonFileFormat()
    return ds.ParquetFileFormat()


def nested_as_json(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Structs, lists and maps become JSON text (the ``json`` logical type)."""
    if not any(pa.types.is_nested(t) for t in batch.schema.types):
        return batch
    columns = []
    for col in batch.columns:
        if pa.types.is_nested(col.type):
            col = pa.array(
                [None if v is None else json.dumps(v, default=str) for v in col.to_pylist()],
                pa.string(),
            )
        columns.append(col)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
