"""Dates and timestamps as text outside years 1-9999: ISO 8601 astronomical years (1 BC is
0000, 44 BC -0043) in CSV and JSONL; outside the years Arrow writes as text (-32767 to 32767)
the writer fails naming the column rather than write "<value out of range>"."""

from __future__ import annotations

import pyarrow as pa
import pytest

from egress.sources.arrow_types import with_infinities
from tests.support.written import written

DAY_US = 86_400_000_000
# Days from 1970: 44 BC-03-15, 1 BC-01-01, 10000-01-01, 32767-12-31, -32767-01-01.
DAYS = [-735_160, -719_528, 2_932_897, 11_248_737, -12_687_428]


def _write(fmt: str, table: pa.Table) -> str:
    return written(fmt, table).decode()


def _table(days: list[int]) -> pa.Table:
    return pa.table(
        {
            "d": pa.array(days, pa.int32()).view(pa.date32()),
            "ts": pa.array([d * DAY_US + 500_000 for d in days], pa.timestamp("us")),
            "tz": pa.array([d * DAY_US for d in days], pa.timestamp("us", tz="UTC")),
        }
    )


def test_iso_years_in_csv_and_jsonl() -> None:
    assert _write("csv", _table(DAYS)).splitlines() == [
        '"d","ts","tz"',
        '"-0043-03-15","-0043-03-15 00:00:00.500000","-0043-03-15 00:00:00.000000Z"',
        '"0000-01-01","0000-01-01 00:00:00.500000","0000-01-01 00:00:00.000000Z"',
        '"10000-01-01","10000-01-01 00:00:00.500000","10000-01-01 00:00:00.000000Z"',
        '"32767-12-31","32767-12-31 00:00:00.500000","32767-12-31 00:00:00.000000Z"',
        '"-32767-01-01","-32767-01-01 00:00:00.500000","-32767-01-01 00:00:00.000000Z"',
    ]
    assert _write("jsonl", _table(DAYS[:1])) == (
        '{"d":"-0043-03-15","ts":"-0043-03-15T00:00:00.500000","tz":"-0043-03-15T00:00:00.000000Z"}\n'
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("day", [11_248_738, -12_687_429])  # 32768-01-01, -32768-12-31
@pytest.mark.parametrize("column", ["d", "ts", "tz"])
def test_years_arrow_cannot_write_as_text_fail_naming_the_column(
    fmt: str, day: int, column: str
) -> None:
    table = _table([0])
    table = table.set_column(
        table.schema.get_field_index(column), column, _table([day]).column(column)
    )
    with pytest.raises(ValueError) as err:
        _write(fmt, table)
    assert str(err.value) == (
        f"column {column!r} holds a value dated outside the years -32767 to 32767, which Egress"
        " cannot write as text; export it as Parquet, or filter it out with a whereClause"
    )


def test_the_range_is_checked_in_every_unit_and_in_lists() -> None:
    seconds = pa.array([11_248_738 * 86_400], pa.timestamp("s"))
    with pytest.raises(ValueError, match="column 's'"):
        _write("csv", pa.table({"s": seconds}))
    nanos = pa.array([2**63 - 2], pa.timestamp("ns"))  # 2262 AD: every ns value is writable
    assert (
        _write("csv", pa.table({"ns": nanos})).splitlines()[1] == '"2262-04-11 23:47:16.854775806"'
    )
    listed = pa.array([[0], [11_248_738]], pa.list_(pa.int32())).cast(pa.list_(pa.date32()))
    with pytest.raises(ValueError, match="column 'l'"):
        _write("jsonl", pa.table({"l": listed}))


def test_infinities_are_not_out_of_range() -> None:
    col = pa.array([0, 0], pa.date32())
    col = with_infinities(col, pa.array([True, False]), pa.array([False, True]))
    assert _write("csv", pa.table({"d": col})).splitlines() == ['"d"', '"infinity"', '"-infinity"']
