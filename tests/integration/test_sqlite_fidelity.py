"""SQLite values that a COMPLETED run delivered changed (SQLite lets any column hold any value;
sqlite3 returns it as int, float, str or bytes), checked in the bytes of CSV, JSONL and Parquet:

- A number in a DATE, DATETIME or TIMESTAMP(TZ) column was taken as Arrow's count of days or
  microseconds (a DATE holding 20000 was 2024-10-04) when its batch held only numbers, and as
  seconds in the machine's local time zone when its batch also held text. Now a number is unix
  seconds in UTC in every batch, exact to the microsecond; a DATE takes only a UTC midnight, a
  TIME no number; and a number that is also a Julian day number (SQLite's own reading) fails.
- Text lost what the type could not hold: a DATE's time of day ('2026-01-31 23:59:59'), digits
  beyond the microsecond, a DATETIME's UTC offset (shifted to UTC and dropped).
- A BLOB outside a BLOB column was Python's repr text ("b'\\x00\\xff'"), its UTF-8 text, or in
  an INTEGER or BOOLEAN column a big-endian number (X'0102' was 258); it now fails the run.
- INTEGER and DECIMAL text was read by Python's int() and Decimal() ('1_000' was 1000, Arabic
  digits '١٢' were 12) or by Arrow ('0x10' was 16); a REAL beyond 64-bit integers in an INTEGER
  column failed with an internal error.
- A REAL in an untyped (text) column was Arrow's "100" in a batch of numbers, "100.0" among text.
"""

from __future__ import annotations

import io
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from datetime import time as time_of_day
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from egress.container import Container
from egress.db.executions import RunRecord
from egress.domain.status import RunStatus
from egress.sources.base import SourceError
from egress.sources.rows import column_array
from tests.conftest import make_settings
from tests.support.factories import extract_once
from tests.support.migrated import migrate


@pytest.fixture
def c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Container]:
    """Batches of two rows (so a value is read both among numbers only and among text), on a
    machine whose local time zone is not UTC."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    settings = make_settings(tmp_path, batch_rows=2)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings)
    yield container
    container.engine.dispose()
    monkeypatch.undo()
    time.tzset()


def _database(tmp_path: Path, table: str, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "src.db"
    with sqlite3.connect(path) as db:
        db.execute(table)
        db.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(rows[0]))})", rows)
    db.close()
    return {"path": str(path)}


def _completed(c: Container, settings: dict[str, Any], fmt: str) -> bytes:
    run, data = extract_once(c, "sqlite", settings, "t", fmt)
    assert run.status is RunStatus.COMPLETED, run.error_message
    return data


def _failed(c: Container, settings: dict[str, Any], fmt: str) -> RunRecord:
    run, data = extract_once(c, "sqlite", settings, "t", fmt)
    assert run.status is RunStatus.FAILED
    assert data == b"" and run.files == []
    return run


def _parquet(data: bytes) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(io.BytesIO(data)).to_pylist()
    return rows


MOMENTS = "CREATE TABLE t (id INTEGER PRIMARY KEY, d DATE, dt DATETIME, tz TIMESTAMPTZ, tm TIME)"
# Batches of two: rows 1-2 hold numbers only, rows 3-4 numbers and text; row 3 repeats row 1.
# Rows 5-6: the first and last seconds of years 1-9999. Text that is exact is kept: a DATE's
# plain midnight, zeros beyond the microsecond.
MOMENT_ROWS: list[tuple[Any, ...]] = [
    (1, 1769817600, 1700000000, 1700000000.5, "10:00:00.1234560"),
    (2, 0, -1, 1700000000.123456, "23:59:59.999999"),
    (3, 1769817600, 1700000000, 1700000000.5, "00:00"),
    (4, "2026-02-01 00:00:00", "2026-05-28 14:00:00.1234560", "2026-05-28 16:00:00+02:00", None),
    (5, -62135596800, -62135596800, 0, None),
    (6, 253402214400, 253402300799, -1, None),
    (7, None, None, None, None),
]


def test_numbers_in_date_and_timestamp_columns_are_unix_seconds_in_utc(
    c: Container, tmp_path: Path
) -> None:
    settings = _database(tmp_path, MOMENTS, MOMENT_ROWS)
    first = {
        "d": date(2026, 1, 31),
        "dt": datetime(2023, 11, 14, 22, 13, 20),
        "tz": datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC),
    }
    assert _parquet(_completed(c, settings, "parquet")) == [
        {"id": 1, **first, "tm": time_of_day(10, 0, 0, 123456)},
        {
            "id": 2,
            "d": date(1970, 1, 1),
            "dt": datetime(1969, 12, 31, 23, 59, 59),
            "tz": datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC),
            "tm": time_of_day(23, 59, 59, 999999),
        },
        {"id": 3, **first, "tm": time_of_day(0, 0)},
        {
            "id": 4,
            "d": date(2026, 2, 1),
            "dt": datetime(2026, 5, 28, 14, 0, 0, 123456),
            "tz": datetime(2026, 5, 28, 14, tzinfo=UTC),
            "tm": None,
        },
        {
            "id": 5,
            "d": date(1, 1, 1),
            "dt": datetime(1, 1, 1),
            "tz": datetime(1970, 1, 1, tzinfo=UTC),
            "tm": None,
        },
        {
            "id": 6,
            "d": date(9999, 12, 31),
            "dt": datetime(9999, 12, 31, 23, 59, 59),
            "tz": datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
            "tm": None,
        },
        {"id": 7, "d": None, "dt": None, "tz": None, "tm": None},
    ]
    assert _completed(c, settings, "csv").decode().splitlines() == [
        '"id","d","dt","tz","tm"',
        '1,"2026-01-31","2023-11-14 22:13:20.000000","2023-11-14 22:13:20.500000Z",'
        '"10:00:00.123456"',
        '2,"1970-01-01","1969-12-31 23:59:59.000000","2023-11-14 22:13:20.123456Z",'
        '"23:59:59.999999"',
        '3,"2026-01-31","2023-11-14 22:13:20.000000","2023-11-14 22:13:20.500000Z",'
        '"00:00:00.000000"',
        '4,"2026-02-01","2026-05-28 14:00:00.123456","2026-05-28 14:00:00.000000Z",',
        '5,"0001-01-01","0001-01-01 00:00:00.000000","1970-01-01 00:00:00.000000Z",',
        '6,"9999-12-31","9999-12-31 23:59:59.000000","1969-12-31 23:59:59.000000Z",',
        "7,,,,",
    ]
    assert _completed(c, settings, "jsonl").decode().splitlines() == [
        '{"id":1,"d":"2026-01-31","dt":"2023-11-14T22:13:20.000000",'
        '"tz":"2023-11-14T22:13:20.500000Z","tm":"10:00:00.123456"}',
        '{"id":2,"d":"1970-01-01","dt":"1969-12-31T23:59:59.000000",'
        '"tz":"2023-11-14T22:13:20.123456Z","tm":"23:59:59.999999"}',
        '{"id":3,"d":"2026-01-31","dt":"2023-11-14T22:13:20.000000",'
        '"tz":"2023-11-14T22:13:20.500000Z","tm":"00:00:00.000000"}',
        '{"id":4,"d":"2026-02-01","dt":"2026-05-28T14:00:00.123456",'
        '"tz":"2026-05-28T14:00:00.000000Z","tm":null}',
        '{"id":5,"d":"0001-01-01","dt":"0001-01-01T00:00:00.000000",'
        '"tz":"1970-01-01T00:00:00.000000Z","tm":null}',
        '{"id":6,"d":"9999-12-31","dt":"9999-12-31T23:59:59.000000",'
        '"tz":"1969-12-31T23:59:59.000000Z","tm":null}',
        '{"id":7,"d":null,"dt":null,"tz":null,"tm":null}',
    ]


JULIAN = (
    "ambiguous: unix seconds in early 1970 or a Julian day number; convert it in a SQL"
    " template (e.g. datetime(x, 'unixepoch') or datetime(x))"
)
NOT_MIDNIGHT = "unix seconds that are not a midnight UTC: the time would be lost"
OUTSIDE = "unix seconds outside the years 1-9999"
# A value of each type as text, to put a number among text.
TEXT = {
    "DATE": "2026-01-31",
    "DATETIME": "2026-05-28 14:00:00",
    "TIMESTAMPTZ": "2026-05-28 14:00:00",
    "TIME": "10:00:00",
}


@pytest.mark.parametrize(
    ("declared", "value", "message"),
    [
        ("DATE", 20000, f"date but holds 20000: {NOT_MIDNIGHT}"),
        ("DATE", 1769817600.5, f"date but holds 1769817600.5: {NOT_MIDNIGHT}"),
        ("DATE", 2460000, f"date but holds 2460000: {JULIAN}"),
        ("DATETIME", 2460000.5, f"timestamp but holds 2460000.5: {JULIAN}"),
        ("TIMESTAMPTZ", 5373484, f"timestamptz but holds 5373484: {JULIAN}"),
        (
            "DATETIME",
            1700000000.1234567,
            "timestamp but holds 1700000000.1234567: unix seconds finer than a microsecond",
        ),
        ("DATETIME", 1e20, f"timestamp but holds 1e+20: {OUTSIDE}"),
        ("DATETIME", -62135596801, f"timestamp but holds -62135596801: {OUTSIDE}"),
        (
            "TIMESTAMPTZ",
            float("inf"),
            "timestamptz but holds inf: not a finite number of unix seconds",
        ),
        (
            "TIME",
            3600,
            "time but holds 3600: a number is not a time of day (store 'HH:MM:SS' text)",
        ),
    ],
)
def test_a_number_that_is_not_exactly_a_date_or_time_fails_the_run(
    c: Container, tmp_path: Path, declared: str, value: Any, message: str
) -> None:
    """The same answer whether the number's batch holds numbers only or text as well."""
    table = f"CREATE TABLE t (id INTEGER PRIMARY KEY, v {declared})"
    alone = _failed(c, _database(tmp_path / "alone", table, [(1, value)]), "csv")
    assert alone.error_message == f"column 'v' is declared {message}"
    rows = [(1, value), (2, TEXT[declared])]
    mixed = _failed(c, _database(tmp_path / "mixed", table, rows), "parquet")
    assert mixed.error_message == alone.error_message


PLAIN_DATE = "not a plain date: its time of day or UTC offset would be lost"
FINER = "finer than a microsecond"


@pytest.mark.parametrize(
    ("declared", "value", "message"),
    [
        ("DATE", "2026-01-31 23:59:59", f"date but holds '2026-01-31 23:59:59': {PLAIN_DATE}"),
        (
            "DATE",
            "2026-01-31T10:00:00+05:00",
            f"date but holds '2026-01-31T10:00:00+05:00': {PLAIN_DATE}",
        ),
        ("DATE", "2026-01-31T00:00:00Z", f"date but holds '2026-01-31T00:00:00Z': {PLAIN_DATE}"),
        (
            "DATETIME",
            "2026-05-28 14:00:00.1234567",
            f"timestamp but holds '2026-05-28 14:00:00.1234567': {FINER}",
        ),
        (
            "TIMESTAMPTZ",
            "2026-05-28 14:00:00.1234567+00:00",
            f"timestamptz but holds '2026-05-28 14:00:00.1234567+00:00': {FINER}",
        ),
        ("TIME", "10:00:00.1234567", f"time but holds '10:00:00.1234567': {FINER}"),
        (
            "DATETIME",
            "2026-05-28 14:00:00+05:00",
            "timestamp but holds '2026-05-28 14:00:00+05:00': a UTC offset, which a timestamp"
            " without time zone cannot hold",
        ),
        (
            "TIME",
            "10:00:00+05:00",
            "time but holds '10:00:00+05:00': a UTC offset, which a time of day cannot hold",
        ),
    ],
)
def test_text_that_its_date_or_time_column_cannot_hold_fails_the_run(
    c: Container, tmp_path: Path, declared: str, value: str, message: str
) -> None:
    table = f"CREATE TABLE t (id INTEGER PRIMARY KEY, v {declared})"
    run = _failed(c, _database(tmp_path, table, [(1, value)]), "parquet")
    assert run.error_message == f"column 'v' is declared {message}"


BLOB_HINT = (
    "a BLOB is read only into a binary column; convert it in a SQL template"
    " (e.g. hex() or CAST(… AS TEXT))"
)


@pytest.mark.parametrize(
    ("declared", "logical", "blob", "shown"),
    [
        ("TEXT", "string", b"\x00\xff", "X'00FF'"),
        ("TEXT", "string", b"hi", "X'6869'"),  # valid UTF-8 is still bytes
        ("", "string", bytes(range(40)), f"X'{bytes(range(32)).hex().upper()}…' (40 bytes)"),
        ("UUID", "uuid", b"ab", "X'6162'"),
        ("JSON", "json", b"{}", "X'7B7D'"),
        ("INTEGER", "int64", b"\x01\x02", "X'0102'"),
        ("BOOLEAN", "boolean", b"\x02", "X'02'"),
        ("REAL", "float64", b"1.5", "X'312E35'"),
        ("DECIMAL(10,2)", "decimal(10,2)", b"1.5", "X'312E35'"),
        ("DATETIME", "timestamp", b"2026", "X'32303236'"),
    ],
)
def test_a_blob_outside_a_blob_column_fails_the_run(
    c: Container, tmp_path: Path, declared: str, logical: str, blob: bytes, shown: str
) -> None:
    table = f"CREATE TABLE t (id INTEGER PRIMARY KEY, v {declared})"
    run = _failed(c, _database(tmp_path, table, [(1, None), (2, blob)]), "jsonl")
    assert run.error_message == (
        f"column 'v' is declared {logical} but holds the BLOB {shown}: {BLOB_HINT}"
    )


NOT_INTEGER = "not an integer (digits with an optional sign)"
NOT_DECIMAL = "not a decimal number (digits with an optional sign, point, exponent)"


@pytest.mark.parametrize(
    ("declared", "value", "message"),
    [
        # Text SQLite does not take for a number stays text in an INTEGER or DECIMAL column.
        ("INTEGER", "1_000", f"int64 but holds '1_000': {NOT_INTEGER}"),
        ("INTEGER", "0x10", f"int64 but holds '0x10': {NOT_INTEGER}"),
        ("INTEGER", "\u0661\u0662", f"int64 but holds '\u0661\u0662': {NOT_INTEGER}"),
        ("INTEGER", 1e19, "int64 but holds 1e+19: beyond 64-bit integers"),
        ("DECIMAL(10,2)", "1_000", f"decimal(10,2) but holds '1_000': {NOT_DECIMAL}"),
        (
            "DECIMAL(10,2)",
            "\u0661\u0662.5",
            f"decimal(10,2) but holds '\u0661\u0662.5': {NOT_DECIMAL}",
        ),
    ],
)
def test_number_columns_take_only_plain_digits_and_what_fits(
    c: Container, tmp_path: Path, declared: str, value: Any, message: str
) -> None:
    table = f"CREATE TABLE t (id INTEGER PRIMARY KEY, v {declared})"
    run = _failed(c, _database(tmp_path, table, [(1, value)]), "csv")
    assert run.error_message == f"column 'v' is declared {message}"


def test_bytes_in_an_integer_column_are_mysql_bits_in_every_batch() -> None:
    """rows.py is shared with MySQL's PyMySQL path, whose BIT(n) values are bytes: big-endian
    whatever the batch holds (Arrow's cast read b'12' alone as the digits 12)."""
    assert column_array("b", [b"12"], "int64").to_pylist() == [0x3132]
    assert column_array("b", [1, b"12"], "int64").to_pylist() == [1, 0x3132]
    assert column_array("b", [b"\x01", b"\x00"], "boolean").to_pylist() == [True, False]
    # Integer text is digits with a sign, nothing else int() takes.
    assert column_array("n", ["+12", "-0", "007"], "int64").to_pylist() == [12, 0, 7]
    for text in (" 12 ", "1_000", "0x10"):
        with pytest.raises(SourceError) as raised:
            column_array("n", [text], "int64")
        assert str(raised.value) == (
            f"column 'n' is declared int64 but holds {text!r}: not an integer (digits with an"
            " optional sign)"
        )


def test_a_number_in_a_text_column_is_its_text_in_every_batch(c: Container, tmp_path: Path) -> None:
    """An untyped column keeps a REAL as it is (a TEXT column would have made it text): it was
    Arrow's "100" in a batch of numbers only, Python's "100.0" (as SQLite's CAST) among text."""
    rows = [(1, 100.0), (2, 7), (3, 100.0), (4, "x")]
    settings = _database(tmp_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, v)", rows)
    assert _parquet(_completed(c, settings, "parquet")) == [
        {"id": 1, "v": "100.0"},
        {"id": 2, "v": "7"},
        {"id": 3, "v": "100.0"},
        {"id": 4, "v": "x"},
    ]
    assert _completed(c, settings, "csv").decode().splitlines() == [
        '"id","v"',
        '1,"100.0"',
        '2,"7"',
        '3,"100.0"',
        '4,"x"',
    ]
    assert _completed(c, settings, "jsonl").decode().splitlines() == [
        '{"id":1,"v":"100.0"}',
        '{"id":2,"v":"7"}',
        '{"id":3,"v":"100.0"}',
        '{"id":4,"v":"x"}',
    ]


def test_text_that_is_not_utf8_fails_the_run_naming_the_column(
    c: Container, tmp_path: Path
) -> None:
    """SQLite stores TEXT bytes as given: sqlite3's decoding error was an internal error with
    a traceback in the log."""
    settings = _database(tmp_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)", [(1, "ok")])
    with sqlite3.connect(settings["path"]) as db:
        db.execute("INSERT INTO t VALUES (2, CAST(X'61FF62' AS TEXT))")
    db.close()
    for fmt in ("csv", "jsonl", "parquet"):
        run = _failed(c, settings, fmt)
        assert run.error_message == (
            "column 's' holds TEXT that is not UTF-8 ('a\ufffdb', undecodable bytes shown as "
            "U+FFFD): Egress reads SQLite text as UTF-8; correct the value, or read the "
            "column's bytes in a SQL template (CAST(s AS BLOB) is a binary column)"
        )
        assert not run.retryable
