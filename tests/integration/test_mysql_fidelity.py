"""MySQL/MariaDB values that a COMPLETED run delivered changed, each read through
libmysqlclient (the default) and through PyMySQL (a connection with ``ssl_ca``; here forced by
``raw.AVAILABLE``), checked in the bytes of CSV, JSONL and Parquet files:

- FLOAT: the text protocol writes 6 significant digits (16777216 as "16777200"); the column
  (and an incremental run's maximum of a FLOAT cursor) is read widened to DOUBLE, so the stored
  single arrives exactly.
- DATE/DATETIME in year 0 with a real month and day ('0000-01-01') are values, written as ISO
  years ("0000-01-01"), not zero dates made NULL: PyMySQL cannot build them (Python's dates
  start at year 1), nor could libmysqlclient's path once one zero date in the batch sent the
  column value by value through PyMySQL's decoders.
- BIT(64) reaches 2^64 - 1: decimal(20,0), like BIGINT UNSIGNED (an int64 overflowed with an
  internal error); BIT(2..63) stay int64.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import struct
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from egress.container import Container
from egress.db.executions import RunRecord
from egress.domain.catalog import TableRef
from egress.domain.identity import ADMIN
from egress.domain.paging import PageRequest
from egress.domain.plan import ReadPlan
from egress.domain.status import RunStatus
from egress.sources import SourceError
from egress.sources.mysql import MysqlSettings, MysqlSource, raw
from tests.conftest import MysqlDatabase, make_settings
from tests.support.factories import submitted_configuration
from tests.support.migrated import migrate
from tests.support.policy import policy_for

_names = itertools.count()


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings)
    yield container
    container.engine.dispose()


@pytest.fixture(params=["libmysqlclient", "pymysql"])
def driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Runs read through this driver; checked after the test by the reads it served."""
    streams: list[int] = []
    stream = raw.RawSession.stream

    def counted(self: raw.RawSession, *args: Any) -> Any:
        streams.append(1)
        return stream(self, *args)

    monkeypatch.setattr(raw.RawSession, "stream", counted)
    native = request.param == "libmysqlclient"
    assert raw.AVAILABLE or not native, "libmysqlclient did not load"
    monkeypatch.setattr(raw, "AVAILABLE", native)
    yield request.param
    assert bool(streams) == native


def _extract(
    c: Container,
    db: MysqlDatabase,
    fmt: str,
    table: str | None = None,
    query: str | None = None,
    settings: dict[str, Any] | None = None,
    **options: Any,
) -> tuple[RunRecord, bytes]:
    """One run of ``table`` (a discovered template) or ``query`` (a SQL template) in ``fmt``,
    with the run ``options``; the run and its file's bytes."""
    ws = c.workspaces.ensure_workspace("t")
    n = next(_names)
    conn = c.connections.create(ws, f"my{n}", "mysql", {**db.settings, **(settings or {})}, None)
    if query is not None:
        tpl_id = c.services.catalog.create_query_template(
            ws, conn.id, f"sql{n}", query, None, None, None, role=ADMIN
        ).id
    else:
        c.services.catalog.discover(ws, conn.id)
        page = c.templates.list_page(ws, conn.id, PageRequest(0, 100)).items
        tpl_id = next(t.id for t in page if t.name.endswith(f".{table}"))
    cfg = submitted_configuration(c, ws, tpl_id, f"cfg{n}", format=fmt)
    execution, _ = c.services.executions.trigger(ws, cfg, options)
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, execution.id).latest
    assert run is not None
    data = b"".join(c.storage.stream(run.files[0].storage_key)) if run.files else b""
    return run, data


def _completed(run: RunRecord) -> None:
    assert run.status is RunStatus.COMPLETED, run.error_message


def _single(x: float) -> float:
    """The float32 nearest ``x``, as a Python float (exact)."""
    value: float = struct.unpack("<f", struct.pack("<f", x))[0]
    return value


# --- FLOAT ----------------------------------------------------------------------------------

FLOATS = """CREATE TABLE floats (id INT PRIMARY KEY, f FLOAT, f73 FLOAT(7,3), fu FLOAT UNSIGNED)"""
FLOAT_ROWS = [
    # MariaDB's text: 16777200, 123457000, 3.40282e38, 0.333333
    (1, 16777217, 1234.567, 123456789),
    (2, 3.4028234e38, -9999.999, 0.333333333),
    (3, 1.17549435e-38, 0.001, 1.4e-45),
    (4, -1.5, None, 0),
    (5, None, None, None),
]
# What each stored single is, exactly (the float32 nearest each inserted value).
FLOAT_WANT = [
    {
        "id": i,
        "f": None if f is None else _single(f),
        "f73": None if f73 is None else _single(f73),
        "fu": None if fu is None else _single(fu),
    }
    for i, f, f73, fu in FLOAT_ROWS
]


@pytest.fixture
def floats(mysql_db: MysqlDatabase) -> MysqlDatabase:
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute(FLOATS)
        cur.executemany("INSERT INTO floats VALUES (%s, %s, %s, %s)", FLOAT_ROWS)
        # The server's own double of each single (what the read selects) is the one above.
        cur.execute("SELECT id, f * 1e0, f73 * 1e0, fu * 1e0 FROM floats ORDER BY id")
        assert [dict(zip(("id", "f", "f73", "fu"), r, strict=True)) for r in cur] == FLOAT_WANT
    return mysql_db


def test_float_columns_arrive_as_stored_in_every_format(
    c: Container, floats: MysqlDatabase, driver: str
) -> None:
    assert FLOAT_WANT[0]["f"] == 16777216.0 and FLOAT_WANT[0]["fu"] == 123456792.0
    run, data = _extract(c, floats, "parquet", "floats")
    _completed(run)
    table = pq.read_table(io.BytesIO(data))
    assert [str(table.schema.field(n).type) for n in ("f", "f73", "fu")] == ["float"] * 3
    assert table.to_pylist() == FLOAT_WANT

    run, data = _extract(c, floats, "jsonl", "floats")
    _completed(run)
    assert data.decode().splitlines() == [
        '{"id":1,"f":16777216.0,"f73":1234.5670166015625,"fu":123456792.0}',
        '{"id":2,"f":3.4028234663852886e+38,"f73":-9999.9990234375,"fu":0.3333333432674408}',
        '{"id":3,"f":1.1754943508222875e-38,"f73":0.0010000000474974513,"fu":1.401298464324817e-45}',
        '{"id":4,"f":-1.5,"f73":null,"fu":0.0}',
        '{"id":5,"f":null,"f73":null,"fu":null}',
    ]
    assert [json.loads(line) for line in data.decode().splitlines()] == FLOAT_WANT

    run, data = _extract(c, floats, "csv", "floats")
    _completed(run)
    assert data.decode().splitlines() == [
        '"id","f","f73","fu"',
        "1,16777216,1234.567,123456790",  # float32's shortest text
        "2,3.4028235e+38,-9999.999,0.33333334",
        "3,1.1754944e-38,0.001,1e-45",
        "4,-1.5,,0",
        "5,,,",
    ]
    # CSV writes the shortest text that reads back as the same single.
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert [
        {k: int(v) if k == "id" else (_single(float(v)) if v else None) for k, v in r.items()}
        for r in rows
    ] == FLOAT_WANT


def test_float_filters_and_sql_templates_read_the_stored_single(
    c: Container, floats: MysqlDatabase, driver: str
) -> None:
    """A whereClause compares the column itself; a SQL template's FLOAT result column is
    widened in the query that wraps it."""
    run, data = _extract(c, floats, "jsonl", "floats", whereClause="f >= 16777216")
    _completed(run)
    assert data.decode().splitlines() == [
        '{"id":1,"f":16777216.0,"f73":1234.5670166015625,"fu":123456792.0}',
        '{"id":2,"f":3.4028234663852886e+38,"f73":-9999.9990234375,"fu":0.3333333432674408}',
    ]
    query = "SELECT id, fu AS g, f FROM floats WHERE id <= 3"
    run, data = _extract(c, floats, "csv", query=query, whereClause="g > 1")
    _completed(run)
    assert data.decode().splitlines() == ['"id","g","f"', "1,123456790,16777216"]


# --- year-0 dates ---------------------------------------------------------------------------

DATES = "CREATE TABLE dates (id INT PRIMARY KEY, d DATE, dt DATETIME(6), ts TIMESTAMP(6) NULL)"
# As the server's text (in UTC for the TIMESTAMP).
YEAR_ZERO = [
    (1, "0000-01-01", "0000-06-15 10:00:00.500000", "2026-05-28 14:00:00.500000"),
    (2, "0000-12-31", "0000-12-31 23:59:59.999999", "1970-01-01 00:00:01.000000"),
    (3, "2026-05-28", "0000-01-01 00:00:00.000000", "2038-01-19 03:14:07.999999"),
    (4, None, None, None),
]
ZERO = [
    (5, "0000-00-00", "0000-00-00 00:00:00.000000", "0000-00-00 00:00:00.000000"),
    (6, "2026-02-30", "2026-02-30 12:00:00.000000", None),
]


def _days(text: str | None) -> int | None:
    """A date's days from 1970 in the proleptic Gregorian calendar (ISO 8601's and Arrow's),
    which repeats every 400 years (146097 days): year 0 is year 400 less that. (Python's dates
    start at year 1.)"""
    if text is None:
        return None
    year = int(text[:4])
    shifted = date.fromisoformat(f"{year or 400:04d}{text[4:]}")
    return (shifted - EPOCH).days - (146097 if year == 0 else 0)


def _micros(text: str | None) -> int | None:
    if text is None:
        return None
    days = _days(text[:10])
    assert days is not None
    clock = datetime.fromisoformat(f"1970-01-01 {text[11:]}") - datetime(1970, 1, 1)
    return days * 86_400_000_000 + clock // timedelta(microseconds=1)


EPOCH = date(1970, 1, 1)


def _dates(db: MysqlDatabase, rows: list[tuple[Any, ...]]) -> MysqlDatabase:
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute(DATES)
        # Zero and impossible dates need a lax mode; year 0 is a date under any mode.
        cur.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
        cur.execute("SET time_zone = '+00:00'")
        cur.executemany("INSERT INTO dates VALUES (%s, %s, %s, %s)", rows)
        cur.execute("SELECT id, CAST(d AS CHAR), CAST(dt AS CHAR), CAST(ts AS CHAR) FROM dates")
        assert sorted(cur.fetchall()) == rows  # stored as written
    return db


@pytest.fixture
def year_zero(mysql_db: MysqlDatabase) -> MysqlDatabase:
    """Year-0 dates beside zero and impossible dates (one batch: on libmysqlclient's path
    each such column is then converted value by value)."""
    return _dates(mysql_db, YEAR_ZERO + ZERO)


def _check_year_zero_files(c: Container, db: MysqlDatabase, zero_rows: int) -> None:
    run, data = _extract(c, db, "csv", "dates")
    _completed(run)
    assert data.decode().splitlines() == [
        '"id","d","dt","ts"',
        '1,"0000-01-01","0000-06-15 10:00:00.500000","2026-05-28 14:00:00.500000Z"',
        '2,"0000-12-31","0000-12-31 23:59:59.999999","1970-01-01 00:00:01.000000Z"',
        '3,"2026-05-28","0000-01-01 00:00:00.000000","2038-01-19 03:14:07.999999Z"',
        "4,,,",
        *["5,,,", "6,,,"][:zero_rows],
    ]
    run, data = _extract(c, db, "jsonl", "dates")
    _completed(run)
    assert data.decode().splitlines() == [
        '{"id":1,"d":"0000-01-01","dt":"0000-06-15T10:00:00.500000",'
        '"ts":"2026-05-28T14:00:00.500000Z"}',
        '{"id":2,"d":"0000-12-31","dt":"0000-12-31T23:59:59.999999",'
        '"ts":"1970-01-01T00:00:01.000000Z"}',
        '{"id":3,"d":"2026-05-28","dt":"0000-01-01T00:00:00.000000",'
        '"ts":"2038-01-19T03:14:07.999999Z"}',
        '{"id":4,"d":null,"dt":null,"ts":null}',
        *[f'{{"id":{i},"d":null,"dt":null,"ts":null}}' for i in (5, 6)][:zero_rows],
    ]
    run, data = _extract(c, db, "parquet", "dates")
    _completed(run)
    table = pq.read_table(io.BytesIO(data))
    assert [str(f.type) for f in table.schema][1:] == [
        "date32[day]",
        "timestamp[us]",
        "timestamp[us, tz=UTC]",
    ]
    counts = [
        table.column(name).combine_chunks().view(count).to_pylist()
        for name, count in (("d", pa.int32()), ("dt", pa.int64()), ("ts", pa.int64()))
    ]
    assert counts[0][:2] == [-719528, -719163]  # 0000-01-01, 0000-12-31 (a leap year)
    assert (
        list(zip(*counts, strict=True))
        == [(_days(d), _micros(dt), _micros(ts)) for _, d, dt, ts in YEAR_ZERO]
        + [(None, None, None)] * zero_rows
    )


def test_year_zero_dates_are_values_beside_zero_dates(
    c: Container, year_zero: MysqlDatabase, driver: str
) -> None:
    _check_year_zero_files(c, year_zero, zero_rows=len(ZERO))


def test_year_zero_dates_alone_are_values(
    c: Container, mysql_db: MysqlDatabase, driver: str
) -> None:
    """No zero date in the batch: libmysqlclient's path casts the whole column at once."""
    _check_year_zero_files(c, _dates(mysql_db, YEAR_ZERO), zero_rows=0)


def test_zero_dates_fail_when_asked_but_year_zero_does_not(
    c: Container, mysql_db: MysqlDatabase, driver: str
) -> None:
    _dates(mysql_db, YEAR_ZERO)
    run, data = _extract(c, mysql_db, "jsonl", "dates", settings={"zeroDates": "fail"})
    _completed(run)
    assert data.decode().splitlines()[0] == (
        '{"id":1,"d":"0000-01-01","dt":"0000-06-15T10:00:00.500000",'
        '"ts":"2026-05-28T14:00:00.500000Z"}'
    )
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
        cur.executemany("INSERT INTO dates VALUES (%s, %s, %s, %s)", ZERO)
    run, data = _extract(c, mysql_db, "csv", "dates", settings={"zeroDates": "fail"})
    assert run.status is RunStatus.FAILED and data == b""
    assert run.error_message == (
        "column 'd' holds the zero or invalid date '0000-00-00'; set the connection's"
        ' zeroDates to "null" to read such dates as NULL'
    )
    run, data = _extract(
        c, mysql_db, "csv", "dates", settings={"zeroDates": "fail"}, whereClause="id <> 5"
    )
    assert run.status is RunStatus.FAILED and data == b""
    assert run.error_message == (
        "column 'd' holds the zero or invalid date '2026-02-30'; set the connection's"
        ' zeroDates to "null" to read such dates as NULL'
    )


# --- BIT(n) ---------------------------------------------------------------------------------

BITS = "CREATE TABLE bits (id INT PRIMARY KEY, b64 BIT(64), b63 BIT(63), b2 BIT(2))"
BIT_ROWS = [
    (1, 2**64 - 1, 2**63 - 1, 3),
    (2, 2**63 + 1, 2**62, 2),
    (3, 0, 0, 0),
    (4, None, None, None),
]


@pytest.fixture
def bits(mysql_db: MysqlDatabase) -> MysqlDatabase:
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute(BITS)
        cur.executemany("INSERT INTO bits VALUES (%s, %s, %s, %s)", BIT_ROWS)
    return mysql_db


def test_bit_64_is_decimal_20_0_with_every_value_exact(
    c: Container, bits: MysqlDatabase, driver: str
) -> None:
    run, data = _extract(c, bits, "parquet", "bits")
    _completed(run)
    table = pq.read_table(io.BytesIO(data))
    assert [str(f.type) for f in table.schema] == ["int32", "decimal128(20, 0)", "int64", "int64"]
    assert [tuple(r.values()) for r in table.to_pylist()] == [
        (i, None if b64 is None else Decimal(b64), b63, b2) for i, b64, b63, b2 in BIT_ROWS
    ]
    run, data = _extract(c, bits, "jsonl", "bits")
    _completed(run)
    assert data.decode().splitlines() == [
        '{"id":1,"b64":"18446744073709551615","b63":9223372036854775807,"b2":3}',
        '{"id":2,"b64":"9223372036854775809","b63":4611686018427387904,"b2":2}',
        '{"id":3,"b64":"0","b63":0,"b2":0}',
        '{"id":4,"b64":null,"b63":null,"b2":null}',
    ]
    run, data = _extract(c, bits, "csv", "bits")
    _completed(run)
    assert data.decode().splitlines() == [
        '"id","b64","b63","b2"',
        "1,18446744073709551615,9223372036854775807,3",
        "2,9223372036854775809,4611686018427387904,2",
        "3,0,0,0",
        "4,,,",
    ]
    run, data = _extract(c, bits, "csv", query="SELECT id, b64 FROM bits WHERE id = 1")
    _completed(run)
    assert data.decode().splitlines() == ['"id","b64"', "1,18446744073709551615"]


def test_a_bit_64_template_read_as_int64_fails_naming_the_column(
    bits: MysqlDatabase, tmp_path: Path, driver: str
) -> None:
    """A template discovered before BIT(64) was decimal(20,0) holds int64: a value past it
    fails the run naming the column and the value (it was an internal OverflowError)."""
    settings = MysqlSettings.model_validate(bits.settings)
    source = MysqlSource(settings, bits.secrets, policy_for(tmp_path))
    columns = next(t.columns for t in source.catalog() if t.name == "bits")
    assert [(col.name, col.type) for col in columns] == [
        ("id", "int32"),
        ("b64", "decimal(20,0)"),
        ("b63", "int64"),
        ("b2", "int64"),
    ]
    old = [replace(col, type="int64") if col.name == "b64" else col for col in columns]
    with pytest.raises(SourceError) as err:
        list(source.read(ReadPlan(TableRef(bits.name, "bits"), old), 100))
    assert str(err.value) == (
        "column 'b64' is read as int64 but holds the BIT value 18446744073709551615; list"
        " the connection's templates again (a BIT(64) column is decimal(20,0))"
    )


def test_a_float_cursor_takes_its_maximum_exactly(
    c: Container, floats: MysqlDatabase, driver: str
) -> None:
    """The window's upper mark is the stored maximum: its 6-digit text (3.40282e38 for
    3.4028234663852886e38) left the row holding it out of every window."""
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, "floats", "mysql", {**floats.settings}, None)
    query = "SELECT id, f FROM floats"
    tpl = c.services.catalog.create_query_template(
        ws, conn.id, "by_f", query, ["id"], "f", None, role=ADMIN
    )
    cfg = submitted_configuration(c, ws, tpl.id, "by_f", format="csv", incremental_lag=0)
    execution, _ = c.services.executions.trigger(ws, cfg, {"extractOnlyNew": True})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, execution.id).latest
    assert run is not None
    _completed(run)
    data = b"".join(c.storage.stream(run.files[0].storage_key))
    assert sorted(data.decode().splitlines()[1:]) == [
        "1,16777216",
        "2,3.4028235e+38",
        "3,1.1754944e-38",
        "4,-1.5",
    ]
    assert c.configurations.get(ws, cfg).watermark == 3.4028234663852886e38
