"""Data file formats: which name is which format, how Arrow reads each one, the exact type
of a CSV column, and the shape of a folder's shared schema."""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
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
# An integer as Egress reads one: decimal digits. Arrow's integer parser also takes hex
# (``0x10`` as 16, ``0xFFFFFFFFFFFFFFFF`` as -1), which is text, not a number.
_DECIMAL_INTEGER = r"^[+-]?\d+$"
# Arrow's CSV parser trims these around a number, date or time (`` 007`` is 7).
_PADDING = " \t"
# A time's fraction beyond microseconds: Arrow infers timestamp[ns], Egress reads microseconds.
_NANOS = re.compile(r"[.,]\d{7}")
# The spellings of a CSV boolean. Arrow's default also reads 1 and 0, numbers in the text.
_TRUE = ["true", "True", "TRUE"]
_FALSE = ["false", "False", "FALSE"]
# A float's text that names an infinity, and one whose digits before any exponent are not all
# zero: a float that reads it as 0, or as a subnormal (fewer digits kept), changed it.
_INFINITY_WORD = r"^[+-]?inf(inity)?$"
_NONZERO_MANTISSA = r"^[+-]?[0-9.]*[1-9]"
_MIN_NORMAL = {32: 1.1754943508222875e-38, 64: sys.float_info.min}
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
    """One schema for a folder's files: all readable, same format, same columns (in any order:
    every read matches a file's columns to the template's by name; the first file's order),
    and for each column one type its files' types widen into (int32 and int64, int and float,
    an all-empty CSV column and anything) without changing a value (``_keeps``). A CSV column
    with no such type is ``string``, its text as written; another format's makes no shared
    schema."""
    schemas = [schema for _, schema in members if schema is not None]
    if len(schemas) != len(members):
        return None
    formats = {f.format for f, _ in members}
    if len(formats) != 1 or not _same_columns(schemas):
        return None
    fmt = formats.pop()
    fields = []
    for i, name in enumerate(schemas[0].names):
        types = [_field(schema, name, i).type for schema in schemas]
        try:
            wide = (
                pa.unify_schemas(
                    [pa.schema([(name, t)]) for t in types], promote_options="permissive"
                )
                .field(0)
                .type
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            wide = None
        if wide is not None and pa.types.is_decimal(wide):
            wide = _with_integer_digits(wide, types)
        if wide is None or not all(_keeps(wide, t, fmt) for t in types):
            if fmt != "csv":
                return None
            wide = pa.string()
        nullable = any(_field(schema, name, i).nullable for schema in schemas)
        fields.append(pa.field(name, wide, nullable))
    return pa.schema(fields)


def _same_columns(schemas: list[pa.Schema]) -> bool:
    """Whether ``schemas`` have the same column names: in any order when each name is one
    column's (a read finds it by name), else in the same order."""
    first = schemas[0].names
    if len(set(first)) != len(first):
        return all(schema.names == first for schema in schemas)
    return all(
        len(schema.names) == len(first) and set(schema.names) == set(first) for schema in schemas
    )


def _field(schema: pa.Schema, name: str, index: int) -> pa.Field:
    """``schema``'s column ``name``: by name when the name is unique, else at ``index``."""
    return schema.field(name) if schema.names.count(name) == 1 else schema.field(index)


def _with_integer_digits(wide: pa.DataType, types: list[pa.DataType]) -> pa.DataType:
    """``wide`` (a decimal) with room for the integer digits of every one of ``types``: Arrow's
    unification of int64 and decimal(10,1) is decimal(19,1), one digit short of int64's 19,
    and reading the int64 file into it then fails on every value."""
    digits = max(_integer_digits(t) for t in types)
    precision = digits + wide.scale
    if precision <= wide.precision:
        return wide
    if pa.types.is_decimal128(wide) and precision <= 38:
        return pa.decimal128(precision, wide.scale)
    if pa.types.is_decimal256(wide) and precision <= 76:
        return pa.decimal256(precision, wide.scale)
    return wide  # no decimal holds them: ``_keeps`` refuses it


# The decimal digits of each integer type's extremes (uint64's 18446744073709551615: 20).
_INTEGER_DIGITS = {8: 3, 16: 5, 32: 10, 64: 19}


def _integer_digits(t: pa.DataType) -> int:
    if pa.types.is_decimal(t):
        return int(t.precision - t.scale)
    if pa.types.is_uint64(t):
        return 20
    if pa.types.is_integer(t):
        return _INTEGER_DIGITS[t.bit_width]
    return 0


def _keeps(wide: pa.DataType, narrow: pa.DataType, fmt: str) -> bool:
    """Whether a file's ``narrow`` values read as ``wide`` each keep their value or fail the
    read. Arrow's casts refuse an integer a float cannot hold (float64: beyond 2^53), and so
    does the JSONL read's check (``jsonl``); but a decimal is rounded to a float without a word,
    and CSV text is parsed straight into a float, rounded too (``9007199254740993``)."""
    if pa.types.is_struct(wide) and pa.types.is_struct(narrow):
        return all(_keeps(wide.field(f.name).type, f.type, fmt) for f in narrow)
    if pa.types.is_map(wide) and pa.types.is_map(narrow):
        return _keeps(wide.key_type, narrow.key_type, fmt) and _keeps(
            wide.item_type, narrow.item_type, fmt
        )
    if _is_list(wide) and _is_list(narrow):
        return _keeps(wide.value_type, narrow.value_type, fmt)
    if pa.types.is_decimal(wide) and (pa.types.is_integer(narrow) or pa.types.is_decimal(narrow)):
        return _integer_digits(narrow) <= _integer_digits(wide) and (
            not pa.types.is_decimal(narrow) or narrow.scale <= wide.scale
        )
    if not is_float(wide) or narrow.equals(wide) or pa.types.is_null(narrow):
        return True
    if is_float(narrow):
        return bool(narrow.bit_width <= wide.bit_width)
    return bool(pa.types.is_integer(narrow)) and fmt != "csv"


def _is_list(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))


def json_strings(schema: pa.Schema) -> pa.Schema:
    """A JSONL file's inferred schema with every date, time and timestamp made ``string``.
    Arrow's JSON reader takes a string that looks like a timestamp for one, losing its UTC
    offset (``"2026-01-31T10:00:00+02:00"`` became 08:00, no zone) and adding a time to a date;
    JSON has no such type, so a JSON string stays the string it is."""
    return pa.schema([f.with_type(_strings(f.type)) for f in schema])


def _strings(t: pa.DataType) -> pa.DataType:
    if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t):
        return pa.string()
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_strings(f.type)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(_strings(t.value_type)))
    return t


def file_version(info: pafs.FileInfo) -> tuple[int | None, int | None]:
    return info.size, info.mtime_ns


def columns_of(schema: pa.Schema) -> list[ColumnInfo]:
    return [ColumnInfo(f.name, logical_from_arrow(f.type), f.nullable) for f in schema]


def is_float(t: pa.DataType) -> bool:
    return bool(pa.types.is_floating(t))


def exact_csv_type(inferred: pa.DataType, values: list[str]) -> pa.DataType:
    """The type for a CSV column Arrow inferred as ``inferred`` (a number, date, time or
    timestamp type) from ``values`` (its non-NULL texts of the first block) that keeps every
    one: numbers by ``exact_type``; a date or time with spaces or tabs around it (Arrow trims
    them) or a timestamp finer than microseconds keeps the column text."""
    if pa.types.is_integer(inferred) or is_float(inferred):
        return exact_type(inferred, values)
    if any(map(_padded, values)):
        return pa.string()
    if pa.types.is_timestamp(inferred) and any(map(_NANOS.search, values)):
        return pa.string()
    return inferred


def _padded(text: str) -> bool:
    return text != text.strip(_PADDING)


def exact_type(inferred: pa.DataType, values: list[str]) -> pa.DataType:
    """The type for a CSV column Arrow inferred as ``inferred`` (an integer or float type) from
    ``values`` (its non-NULL texts), such that every value keeps its exact value: a leading
    zero (``01234``), spaces around a number (Arrow trims them: `` 007`` would be 7) or a hex
    integer (``0x10``) keep the column text, integers beyond int64 are ``decimal(38,0)``,
    numbers written with a decimal point are ``decimal(38,s)`` with the largest scale seen, and
    only exponents, ``nan`` and ``inf`` make a float — of at most 15 significant digits, within
    float64's normal range (``1e400``, ``1e-400`` and subnormals keep the column text)."""
    if any(_padded(v) or _LEADING_ZERO.match(v) for v in values):
        return pa.string()
    if pa.types.is_integer(inferred):
        return inferred if all(re.match(_DECIMAL_INTEGER, v) for v in values) else pa.string()
    plain = [m for v in values if (m := _PLAIN_NUMBER.match(v)) and any(map(str.isdigit, v))]
    if len(plain) == len(values):
        scale = max((len(m.group(2) or "") for m in plain), default=0)
        whole = max((len(m.group(1)) for m in plain), default=1)
        return pa.decimal128(38, scale) if whole + scale <= 38 else pa.string()
    if any(_float_changes(v) for v in values):
        return pa.string()
    return inferred


def _float_changes(text: str) -> bool:
    """Whether the float64 read from ``text`` may be another number: more than 15 significant
    digits, beyond its range (inf) or below its normal range (0, or a subnormal)."""
    if _significant_digits(text) > _FLOAT_DIGITS:
        return True
    if re.match(_INFINITY_WORD, text, re.IGNORECASE) or text.lower().lstrip("+-") == "nan":
        return False
    try:
        number = abs(float(text))
    except ValueError:
        return True
    nonzero = re.match(_NONZERO_MANTISSA, text) is not None
    return math.isinf(number) or (nonzero and number < _MIN_NORMAL[64])


def float_keeps(number: str) -> bool:
    """Whether the float64 nearest a JSON number's text is written back as the same number
    (``1.10`` as 1.1 is; ``123.456789012345678901`` as 123.45678901234568 is not)."""
    return Decimal(repr(float(number))) == Decimal(number)


def exact_json_type(numbers: list[str]) -> pa.DataType:
    """The type for a JSONL column Arrow inferred as float64 from ``numbers`` (their texts):
    float64 while it keeps every one, else the decimal ``exact_type`` finds for them (Arrow
    reads a JSON number into a decimal exactly or fails), else float64 all the same: the read
    then fails on the first number it would change (``jsonl``)."""
    if all(map(float_keeps, numbers)):
        return pa.float64()
    exact = exact_type(pa.float64(), numbers)
    return exact if pa.types.is_decimal(exact) else pa.float64()


def _significant_digits(text: str) -> int:
    mantissa = re.split(r"[eE]", text, maxsplit=1)[0]
    return len(mantissa.lstrip("+-").replace(".", "").lstrip("0"))


def csv_convert(null_values: tuple[str, ...]) -> pcsv.ConvertOptions:
    """Only an empty field is NULL (plus the connection's own spellings), and a quoted ""
    is the empty string: the rule Egress writes by. Arrow's default also reads NA, N/A,
    null, NULL, nan, #N/A… as NULL, which would erase Namibia's country code. A boolean is
    true or false in one of three cases (``_TRUE``): a column mixing them with 1 and 0 is
    text, and a later 1 in a boolean column fails the run."""
    return pcsv.ConvertOptions(
        null_values=["", *null_values],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=_TRUE,
        false_values=_FALSE,
    )


def csv_checked(t: pa.DataType) -> bool:
    """Whether a CSV column of type ``t`` is read as text and parsed by ``csv_numbers``: Arrow's
    own parsing reads ``0x10`` into an integer and ``1e400`` into a float as inf, no error, and
    fails on a decimal's third digit without naming the value."""
    return bool(pa.types.is_integer(t) or is_float(t) or pa.types.is_decimal(t))


def csv_trimmed(t: pa.DataType) -> bool:
    """Whether Arrow's CSV reader trims spaces and tabs around a value of type ``t``: a number,
    date, time or timestamp (`` 007`` is 7, `` 2026-01-02`` that date)."""
    return bool(
        csv_checked(t) or pa.types.is_date(t) or pa.types.is_time(t) or pa.types.is_timestamp(t)
    )


def csv_text_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with its ``csv_checked`` columns as ``string``: how a CSV file is scanned."""
    return pa.schema([f.with_type(pa.string()) if csv_checked(f.type) else f for f in schema])


class ChangedValue(ValueError):
    """A CSV value its column's type would change or cannot hold, at ``row`` of a table."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(message)
        self.row = row


def not_utf8(name: str) -> str:
    """Why a CSV column's text cannot be read: Arrow infers ``binary`` for it in the first
    block (delivered as base64 before 2026-12-03) and fails on it after."""
    return (
        f"column {name!r} is not UTF-8 text; a CSV file must be UTF-8: convert it (for example "
        "iconv -f latin1 -t utf-8) and list the templates again"
    )


def first_not_utf8(values: pa.Array) -> int | None:
    """The row of the first of ``values`` (binary) that is not UTF-8 text, if any."""
    for row, value in enumerate(values.to_pylist()):
        try:
            if value is not None:
                value.decode("utf-8")
        except UnicodeDecodeError:
            return row
    return None


def csv_numbers(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A table scanned as ``csv_text_schema`` with its checked columns parsed into their
    ``schema`` type, or ``ChangedValue`` at the first value that would not keep its number.
    A table of many small batches (a folder of tiny files) costs one set of compute calls,
    not one per batch: each call costs ~15 µs however short its input."""
    columns = []
    for name, col in zip(table.schema.names, table.columns, strict=True):
        target = schema.field(name).type
        if csv_checked(target) and pa.types.is_string(col.type):
            col = _parsed(name, col, target)
        columns.append(col)
    return pa.Table.from_arrays(columns, names=table.schema.names)


def _parsed(name: str, col: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    try:
        values, text = pc.cast(col, target), col  # plain numbers: no trimmed copy
    except pa.ArrowInvalid:
        # Spaces and tabs around a number of a typed column are not part of it, as Arrow's
        # reader has it (`` 12 `` is 12): a custom template can type a padded column.
        text = pc.utf8_trim(col, _PADDING)
        try:
            values = pc.cast(text, target)
        except pa.ArrowInvalid:  # rare: find the value, one at a time
            bad = [v is not None and not _casts(v, target) for v in text.to_pylist()]
            _refuse(name, col, pc.indices_nonzero(pa.array(bad, pa.bool_())), unreadable(target))
            raise
    if pa.types.is_integer(target):
        # Of what is not [+-]digits, Arrow's integer cast reads only hex (0x10 as 16).
        hexed = pc.match_substring(text, "x", ignore_case=True)
        _refuse(name, col, pc.indices_nonzero(pc.fill_null(hexed, False)), _NOT_DECIMAL)
    if is_float(target):
        # The regexes run only on the few rows whose number may not be their text's.
        infinite = _matching(text, pc.is_inf(values), _INFINITY_WORD, match=False)
        tiny = pc.less(pc.abs(values), _MIN_NORMAL[target.bit_width])
        lost = _matching(text, tiny, _NONZERO_MANTISSA, match=True)
        changed = pa.concat_arrays([infinite, lost])
        _refuse(name, col, changed, f"{logical_from_arrow(target)} cannot hold without changing it")
    return values


def unreadable(target: pa.DataType) -> str:
    """Why a value its column's type does not read fails the run."""
    return f"{logical_from_arrow(target)} cannot read"


_NOT_DECIMAL = "is not an integer in decimal digits"


def _matching(text: pa.ChunkedArray, mask: pa.ChunkedArray, pattern: str, match: bool) -> pa.Array:
    """The rows ``mask`` selects whose text matches ``pattern`` (``match``) or does not."""
    rows = pc.indices_nonzero(pc.fill_null(mask, False))
    if not len(rows):
        return rows
    hits = pc.match_substring_regex(text.take(rows).combine_chunks(), pattern, ignore_case=True)
    return rows.filter(hits if match else pc.invert(hits))


def _casts(text: str, target: pa.DataType) -> bool:
    try:
        pc.cast(pa.array([text]), target)
    except pa.ArrowInvalid:
        return False
    return True


def _refuse(name: str, col: pa.ChunkedArray, rows: pa.Array, why: str) -> None:
    """Raise ChangedValue at the first of ``rows`` (row numbers in ``col``), if any."""
    if not len(rows):
        return
    row = pc.min(rows).as_py()
    raise ChangedValue(row, holds(name, col[row].as_py(), why))


def holds(name: str, value: str, why: str) -> str:
    """Why a run fails on a CSV value, and what to do."""
    return (
        f"column {name!r} holds {value!r}, which {why}; set the column's type (string keeps "
        "the text) with a custom template's columnTypes"
    )


def file_format(
    fmt: str,
    schema: pa.Schema | None,
    null_values: tuple[str, ...],
    one_column: bool = False,
) -> ds.FileFormat:
    """The dataset format; ``schema`` (the template's types) when reading, None to infer.
    ``one_column``: the CSV file's header has one column, so an empty line is a NULL (as
    Egress writes one), not a line to skip."""
    if fmt == "csv":
        convert = csv_convert(null_values)
        if schema is not None:  # read every column as its template type, never re-inferred
            convert.column_types = {f.name: f.type for f in csv_text_schema(schema)}
        parse = pcsv.ParseOptions(ignore_empty_lines=not one_column)
        return ds.CsvFileFormat(parse_options=parse, convert_options=convert)
    if fmt == "json":
        return ds.JsonFileFormat()
    return ds.ParquetFileFormat()


def nested_as_json(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Structs, lists and maps become JSON text (the ``json`` logical type), each value inside
    as Egress's JSONL writes it (``_json_values``), so the text is JSON and every value exact."""
    if not any(pa.types.is_nested(t) for t in batch.schema.types):
        return batch
    columns = []
    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_nested(col.type):
            try:
                text = [None if v is None else _dumps(v) for v in _json_values(col)]
            except (TypeError, ValueError) as exc:  # a type no JSON renderer knows
                raise ValueError(f"column {name!r} cannot be written as JSON: {exc}") from exc
            col = pa.array(text, pa.string())
        columns.append(col)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


# Python's JSON of a nested value; no NaN (``_json_values`` made it a string), never a repr.
_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def _json_values(col: pa.Array) -> list[Any]:
    """A nested column's values as Python's JSON encoder takes them, every leaf rendered as a
    top-level column of its type is in JSONL (``json_renderer``): binary base64, timestamps ISO
    (``2026-01-01T00:00:00.000000Z``), decimals strings of their digits, NaN and infinities
    the strings "NaN", "Infinity", "-Infinity". A map is a list of [key, value] pairs."""
    # Here, not at the top: render imports arrow_types, whose package imports this module.
    from egress.sinks.render import json_renderer

    t = col.type
    if pa.types.is_struct(t):
        names = [f.name for f in t]
        children = [_json_values(child) for child in col.flatten()]
        valid = col.is_valid().to_pylist()
        return [
            dict(zip(names, row, strict=True)) if ok else None
            for ok, *row in zip(valid, *children, strict=True)
        ]
    if pa.types.is_map(t):  # a list of {key, value} structs: no list kernel takes a map
        entries = pa.struct([("key", t.key_type), ("value", t.item_type)])
        maps = _json_values(col.cast(pa.list_(entries)))
        return [None if m is None else [[e["key"], e["value"]] for e in m] for m in maps]
    if _is_list(t):
        items = iter(_json_values(col.flatten()))
        lengths = pc.list_value_length(col).to_pylist()
        return [None if n is None else list(islice(items, n)) for n in lengths]
    if pa.types.is_dictionary(t):
        col = col.dictionary_decode()
    elif pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        col = col.cast(pa.binary())
    elif pa.types.is_large_string(t):
        col = col.cast(pa.string())
    elif pa.types.is_float16(t):
        col = col.cast(pa.float32())
    elif pa.types.is_timestamp(t):  # microseconds at least, and "Z" means the UTC wall clock
        unit = "us" if t.unit in ("s", "ms") else t.unit
        col = col.cast(pa.timestamp(unit, None if t.tz is None else "UTC"))
    return json_renderer(pa.field("item", col.type))(col)
