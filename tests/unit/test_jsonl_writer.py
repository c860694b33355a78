"""The column-at-a-time JSONL writer writes, byte for byte, what Python's JSON encoder writes
for each row's rendered values (the per-value writer it replaced), for every Arrow type a
source delivers, with NULLs, escapes, non-finite floats and infinite dates."""

from __future__ import annotations

import io
import json
import math
import random
import struct
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from egress.domain.catalog import ColumnInfo
from egress.sinks import jsonl
from egress.sinks.jsonl import JsonlWriter
from egress.sinks.render import json_renderer
from egress.sources.arrow_types import arrow_schema, with_infinities

FIELDS = [
    ColumnInfo("b", "boolean"),
    ColumnInfo("i2", "int16"),
    ColumnInfo("i8", "int64"),
    ColumnInfo("f4", "float32"),
    ColumnInfo("f8", "float64"),
    ColumnInfo("dec", "decimal"),
    ColumnInfo("d38", "decimal(38,10)"),
    ColumnInfo("s", "string"),
    ColumnInfo("u", "uuid"),
    ColumnInfo("j", "json"),
    ColumnInfo("dt", "date"),
    ColumnInfo("tm", "time"),
    ColumnInfo("ts", "timestamp"),
    ColumnInfo("tz", "timestamptz"),
    ColumnInfo("dur", "duration"),
    ColumnInfo("bin", "binary"),
    ColumnInfo("li", "list<int32>"),
    ColumnInfo("lts", "list<timestamptz>"),
    ColumnInfo("lf", "list<float64>"),
]
ROWS: list[list[Any]] = [
    [
        True,
        -32768,
        2**63 - 1,
        0.1,
        -2.25e100,
        "-1234567890.12",
        Decimal("1E-7"),
        'héllo, "wörld"\nsecond\\ line 🎉\x00\x1f\x7f\u2028',
        "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        '{"a": [1, 2], "big": 123456789012345678901234567890}',
        date(1, 1, 1),
        time(23, 59, 59, 999999),
        datetime(2026, 5, 28, 14, 0, 0, 123456),
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        timedelta(hours=-838, minutes=-59, seconds=-59),
        b"\x00\x01\xff",
        [1, None, 3],
        [datetime(2026, 1, 1, tzinfo=UTC), None],
        [math.nan, 1e16],
    ],
    [
        False,
        0,
        0,
        math.nan,
        math.inf,
        "NaN",
        Decimal("0.0000000000"),
        "",
        "",
        "null",
        date(9999, 12, 31),
        time(0, 0),
        datetime(1970, 1, 1),
        datetime(2026, 5, 28, 16, 0, tzinfo=UTC),
        timedelta(0),
        b"",
        [],
        [],
        [],
    ],
    [None] * len(FIELDS),
    [
        None,
        1,
        -1,
        -math.inf,
        1e-5,
        "0.000000001",
        Decimal("-12.5000000000"),
        "plain ünïcødé",
        None,
        "[]",
        date(2026, 2, 28),
        time(12, 0, 0, 1),
        datetime(2026, 5, 28, 14, 0, 0),
        None,
        timedelta(microseconds=1),
        None,
        None,
        None,
        [-0.0, 5e-324],
    ],
]


def _batch() -> pa.RecordBatch:
    schema = arrow_schema(FIELDS)
    columns = [pa.array([row[i] for row in ROWS], f.type) for i, f in enumerate(schema)]
    batch = pa.RecordBatch.from_arrays(columns, schema=schema)
    # PostgreSQL's infinite dates and timestamps, as sources deliver them.
    idx = batch.schema.get_field_index
    ts, dt = batch.column(idx("ts")), batch.column(idx("dt"))
    pos, neg = pa.array([False, True, False, False]), pa.array([False, False, False, True])
    batch = batch.set_column(idx("ts"), "ts", with_infinities(ts, pos, neg))
    return batch.set_column(idx("dt"), "dt", with_infinities(dt, neg, pos))


def _reference(batch: pa.RecordBatch) -> bytes:
    """What the per-value writer wrote: json.dumps of each row's rendered values."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
    columns = [json_renderer(f)(c) for f, c in zip(batch.schema, batch.columns, strict=True)]
    names = batch.schema.names
    lines = [dumps(dict(zip(names, row, strict=True))) for row in zip(*columns, strict=True)]
    return "".join(line + "\n" for line in lines).encode()


def _written(batch: pa.RecordBatch) -> bytes:
    out = io.BytesIO()
    writer = JsonlWriter(out, batch.schema)
    writer.write(batch)
    writer.close()
    return out.getvalue()


def test_every_type_matches_the_per_value_encoder() -> None:
    batch = _batch()
    written = _written(batch)
    assert written == _reference(batch)
    first, second, nulls, last = (json.loads(line) for line in written.decode().split("\n")[:-1])
    assert first["s"] == 'héllo, "wörld"\nsecond\\ line 🎉\x00\x1f\x7f\u2028'
    assert (first["f4"], first["f8"], second["f4"], second["f8"], last["f4"]) == (
        0.10000000149011612,
        -2.25e100,
        "NaN",
        "Infinity",
        "-Infinity",
    )
    assert (first["dec"], first["d38"], second["d38"]) == (
        "-1234567890.12",
        "0.0000001000",
        "0.0000000000",
    )
    assert (second["ts"], last["ts"], second["dt"], last["dt"]) == (
        "infinity",
        "-infinity",
        "-infinity",
        "infinity",
    )
    assert first["tz"] == "1969-12-31T23:59:59.000000Z" and first["ts"].endswith("14:00:00.123456")
    assert first["j"]["big"] == 123456789012345678901234567890 and second["j"] is None
    assert all(v is None for v in nulls.values())


def test_slices_and_single_rows_match() -> None:
    batch = _batch()
    for offset in range(batch.num_rows):
        one = batch.slice(offset, 1)
        assert _written(one) == _reference(one)
    assert _written(batch.slice(0, 0)) == b""


def test_batches_larger_than_a_slice(monkeypatch: Any) -> None:
    monkeypatch.setattr(jsonl, "JSONL_SLICE_ROWS", 3)
    batch = pa.concat_batches([_batch()] * 5)
    assert _written(batch) == _reference(batch)


def test_floats_are_pythons_float_text() -> None:
    """Arrow renders the common floats, Python the rest: together exactly json.dumps's text."""
    rng = random.Random(19)
    values: list[float | None] = [0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e16, 9999999999999998.0]
    values += [1e15, 123456.0, 0.1, 1 / 3, 5e-324, 1.7976931348623157e308, math.nan, None]
    for _ in range(8_000):
        values.append(struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0])
        values.append(rng.random() * 10 ** rng.randint(-8, 20) * rng.choice((1, -1)))
        values.append(round(rng.uniform(-1e6, 1e6), rng.randint(0, 4)))
    for arrow_type in (pa.float64(), pa.float32()):
        field = pa.field("f", arrow_type)
        batch = pa.RecordBatch.from_arrays(
            [pa.array(values, arrow_type)], schema=pa.schema([field])
        )
        assert _written(batch) == _reference(batch)


def test_text_typed_decimals_and_uuids_are_escaped_too() -> None:
    """A SQLite column declared DECIMAL or UUID may hold any text."""
    schema = arrow_schema([ColumnInfo("dec", "decimal"), ColumnInfo("u", "uuid")])
    text = pa.array(['say "hi"\\', "\x01"], pa.string())
    batch = pa.RecordBatch.from_arrays([text, text], schema=schema)
    assert _written(batch) == _reference(batch)
    assert json.loads(_written(batch).split(b"\n")[0]) == {"dec": 'say "hi"\\', "u": 'say "hi"\\'}
