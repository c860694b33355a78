"""Times of day as text: ``HH:MM:SS`` with the unit's fraction, PostgreSQL's end of a day
(24:00, which Arrow prints "<value out of range: …>") as ``24:00:00``; a time past it (a
file can hold any integer) fails the text writers naming the column; Parquet refuses 24:00."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from tests.support.written import written

DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}


def _times(unit: str, values: list[int | None]) -> pa.Array:
    storage = pa.int64() if unit in ("us", "ns") else pa.int32()
    kind = pa.time64(unit) if unit in ("us", "ns") else pa.time32(unit)
    return pa.array(values, storage).view(kind)


@pytest.mark.parametrize(
    ("unit", "end", "noon"),
    [
        ("s", "24:00:00", "12:00:00"),
        ("ms", "24:00:00.000", "12:00:00.500"),
        ("us", "24:00:00.000000", "12:00:00.500000"),
        ("ns", "24:00:00.000000000", "12:00:00.500000000"),
    ],
)
def test_the_end_of_a_day_in_every_unit(unit: str, end: str, noon: str) -> None:
    half = DAY[unit] // 2 + (0 if unit == "s" else DAY[unit] // 86_400 // 2)
    table = pa.table({"t": _times(unit, [DAY[unit], half, None])})
    assert written("csv", table).decode().splitlines() == ['"t"', f'"{end}"', f'"{noon}"', ""]
    lines = [json.loads(line) for line in written("jsonl", table).decode().splitlines()]
    assert lines == [{"t": end}, {"t": noon}, {"t": None}]


def test_a_list_of_times_holds_the_end_of_a_day() -> None:
    times = pa.ListArray.from_arrays([0, 2], _times("us", [0, DAY["us"]]))
    table = pa.table({"l": times})
    assert written("jsonl", table) == b'{"l":["00:00:00.000000","24:00:00.000000"]}\n'
    assert written("csv", table).decode().splitlines()[1] == (
        '"[""00:00:00.000000"",""24:00:00.000000""]"'
    )


@pytest.mark.parametrize("value", [DAY["us"] + 1, -1])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_time_outside_the_day_fails_text_naming_the_column(fmt: str, value: int) -> None:
    table = pa.table({"id": [1, 2], "clock": _times("us", [0, value])})
    with pytest.raises(ValueError) as failed:
        written(fmt, table)
    assert str(failed.value) == (
        "column 'clock' holds a time of day outside 00:00:00 to 24:00:00, which Egress cannot"
        " write as text; filter it out with a whereClause"
    )


def test_parquet_refuses_the_end_of_a_day() -> None:
    table = pa.table({"clock": _times("us", [0, DAY["us"] - 1])})
    assert written("parquet", table)  # the last microsecond of a day is a TIME
    with pytest.raises(ValueError) as failed:
        written("parquet", pa.table({"clock": _times("us", [0, DAY["us"]])}))
    assert str(failed.value) == (
        "column 'clock' holds a time of day at or past 24:00:00, which Parquet cannot"
        " represent; export it as CSV or JSONL, or filter it out with a whereClause"
    )
