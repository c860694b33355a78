"""Type fidelity: every common type from real PostgreSQL and SQLite sources, read back from
CSV, JSONL and Parquet, equals what was inserted. The PostgreSQL COPY fast path writes the same
bytes as the Arrow path.

Rendering rules checked here (README "Output formats"):
CSV — NULL is an empty field, an empty string is ""; timestamps `YYYY-MM-DD HH:MM:SS.ffffff`
(+`Z` when time-zoned, in UTC); booleans true/false; decimals with their scale; binary base64.
JSONL — ISO 8601 timestamps with `T`; decimals as strings; binary base64; JSON embedded.
Parquet — decimal128, timestamp[us] (UTC when time-zoned), date32, bool, int widths kept.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from egress.container import Container
from egress.domain.catalog import TableRef
from egress.domain.paging import PageRequest
from egress.domain.plan import ReadPlan
from egress.domain.status import RunStatus
from egress.sinks.file import FileSink
from egress.sources.arrow_types import arrow_schema
from egress.sources.base import Rendering
from egress.sources.postgresql import PostgresSettings, PostgresSource
from tests.conftest import MysqlDatabase, PgDatabase, make_settings
from tests.support.factories import extract_once, submitted_configuration
from tests.support.migrated import migrate

_US = timedelta(microseconds=1)
TRICKY = 'héllo, "wörld"\nsecond line 🎉'

PG_TABLE = """CREATE TABLE everything (
    id bigint PRIMARY KEY, i2 int2, i4 int4, i8 int8, r real, d double precision,
    n numeric(12,2), big numeric, b boolean, t text, v varchar(20), dt date, tm time,
    ts timestamp, tz timestamptz, by bytea, j json, jb jsonb, u uuid)"""
PG_ROWS = [
    (
        1,
        -32768,
        2147483647,
        9223372036854775807,
        1.5,
        -2.25e100,
        Decimal("-1234567890.12"),
        Decimal("1e30"),
        True,
        TRICKY,
        "",
        date(1, 1, 1),
        time(23, 59, 59, 999999),
        datetime(2026, 5, 28, 14, 0, 0, 123456),
        datetime(2026, 5, 28, 16, 0, 0, tzinfo=UTC),
        b"\x00\x01\xff",
        '{"a": [1, 2]}',
        '{"k": "v"}',
        "f47ac10b-58cc-4372-a567-0e02b2c3d479",
    ),
    (
        2,
        0,
        0,
        0,
        0.0,
        0.0,
        Decimal("0.00"),
        Decimal("0.000000001"),
        False,
        "",
        "x",
        date(9999, 12, 31),
        time(0, 0),
        datetime(1970, 1, 1),
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        b"",
        "null",
        "[]",
        "00000000-0000-0000-0000-000000000000",
    ),
    (3, *([None] * 18)),
]


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings)
    yield container
    container.engine.dispose()


@pytest.fixture
def pg(pg_db: PgDatabase) -> PgDatabase:
    with pg_db.connect() as conn, conn.cursor() as cur:
        cur.execute(PG_TABLE)
        cur.execute("SET TIME ZONE 'Europe/Warsaw'")  # inserted with a non-UTC session
        cur.executemany(f"INSERT INTO everything VALUES ({', '.join(['%s'] * 19)})", PG_ROWS)
        cur.execute("CREATE TABLE empty (id int PRIMARY KEY)")
    return pg_db


def _pg_settings(db: PgDatabase) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"}


def test_postgres_csv(c: Container, pg: PgDatabase) -> None:
    run, data = extract_once(c, "postgresql", _pg_settings(pg), "everything", "csv")
    assert run.status is RunStatus.COMPLETED and run.record_count == 3
    lines = data.decode().split("\n")
    assert lines[0] == ",".join(
        f'"{n}"'
        for n in [
            "id",
            "i2",
            "i4",
            "i8",
            "r",
            "d",
            "n",
            "big",
            "b",
            "t",
            "v",
            "dt",
            "tm",
            "ts",
            "tz",
            "by",
            "j",
            "jb",
            "u",
        ]
    )
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(data.decode()))}
    one, two, nulls = rows["1"], rows["2"], rows["3"]
    assert (one["i2"], one["i4"], one["i8"]) == ("-32768", "2147483647", "9223372036854775807")
    assert (one["r"], one["d"]) == ("1.5", "-2.25e+100")
    assert (one["n"], one["big"], two["n"], two["big"]) == (
        "-1234567890.12",
        "1000000000000000000000000000000",
        "0.00",
        "0.000000001",
    )
    assert (one["b"], two["b"]) == ("true", "false")
    assert (one["t"], one["v"], two["t"]) == (TRICKY, "", "")
    assert (one["dt"], two["dt"]) == ("0001-01-01", "9999-12-31")
    assert one["tm"] == "23:59:59.999999"
    assert one["ts"] == "2026-05-28 14:00:00.123456"
    assert one["tz"] == "2026-05-28 16:00:00.000000Z"
    assert two["tz"] == "1969-12-31 23:59:59.000000Z"
    assert base64.b64decode(one["by"]) == b"\x00\x01\xff" and two["by"] == ""
    assert json.loads(one["j"]) == {"a": [1, 2]} and json.loads(one["jb"]) == {"k": "v"}
    assert one["u"] == "f47ac10b-58cc-4372-a567-0e02b2c3d479"
    assert all(v == "" for k, v in nulls.items() if k != "id")
    # NULL is an empty field, an empty string is "": the raw line tells them apart.
    null_line = next(line for line in lines if line.startswith("3,"))
    assert null_line == "3" + "," * 18 and ',"",' in data.decode()
    assert run.files[0].sha256 == hashlib.sha256(data).hexdigest()
    assert run.files[0].size_bytes == len(data)


def test_postgres_jsonl(c: Container, pg: PgDatabase) -> None:
    _run, data = extract_once(c, "postgresql", _pg_settings(pg), "everything", "jsonl")
    rows = {r["id"]: r for r in map(json.loads, data.decode().splitlines())}
    one, two, nulls = rows[1], rows[2], rows[3]
    assert (one["i8"], one["r"], one["d"]) == (9223372036854775807, 1.5, -2.25e100)
    assert (one["n"], one["big"], two["big"]) == (
        "-1234567890.12",
        "1000000000000000000000000000000",
        "0.000000001",
    )
    assert (one["b"], one["t"], one["v"]) == (True, TRICKY, "")
    assert (one["dt"], one["tm"]) == ("0001-01-01", "23:59:59.999999")
    assert one["ts"] == "2026-05-28T14:00:00.123456"
    assert one["tz"] == "2026-05-28T16:00:00.000000Z"
    assert base64.b64decode(one["by"]) == b"\x00\x01\xff"
    assert (one["j"], one["jb"], two["j"], two["jb"]) == ({"a": [1, 2]}, {"k": "v"}, None, [])
    assert one["u"] == "f47ac10b-58cc-4372-a567-0e02b2c3d479"
    assert all(v is None for k, v in nulls.items() if k != "id")


def test_json_numbers_keep_the_sources_digits_in_jsonl(c: Container, pg_db: PgDatabase) -> None:
    """A JSON column's numbers are written as the database holds them: Python's float would
    round 123.456789012345678901 and fail on 1E400 (a run once COMPLETED with
    123.45678901234568, and a json 1E400 failed it with "Out of range float values")."""
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE js (id int PRIMARY KEY, jb jsonb, j json)")
        conn.execute(
            """INSERT INTO js VALUES (1, '{"x": 123.456789012345678901, "y": 1.10, "z": 1e2}',
            '{"n": 1E400, "m": [0.1, -2.50]}'), (2, '"NaN"', NULL)"""
        )
    run, data = extract_once(c, "postgresql", _pg_settings(pg_db), "js", "jsonl")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines() == [
        '{"id":1,"jb":{"x":123.456789012345678901,"y":1.10,"z":100},'
        '"j":{"n":1E400,"m":[0.1,-2.50]}}',
        '{"id":2,"jb":"NaN","j":null}',
    ]


def test_postgres_parquet(c: Container, pg: PgDatabase) -> None:
    _run, data = extract_once(c, "postgresql", _pg_settings(pg), "everything", "parquet")
    table = pq.read_table(io.BytesIO(data))
    types = {f.name: str(f.type) for f in table.schema}
    assert types["i2"] == "int16" and types["i4"] == "int32" and types["r"] == "float"
    assert types["n"] == "decimal128(12, 2)" and types["big"] == "string"
    assert types["ts"] == "timestamp[us]" and types["tz"] == "timestamp[us, tz=UTC]"
    rows = {r["id"]: r for r in table.to_pylist()}
    one = rows[1]
    assert one["n"] == Decimal("-1234567890.12") and one["big"] == "1000000000000000000000000000000"
    assert one["ts"] == datetime(2026, 5, 28, 14, 0, 0, 123456)
    assert one["tz"] == datetime(2026, 5, 28, 16, 0, tzinfo=UTC)
    assert one["dt"] == date(1, 1, 1) and one["tm"] == time(23, 59, 59, 999999)
    assert (one["by"], one["t"], one["b"]) == (b"\x00\x01\xff", TRICKY, True)
    assert all(v is None for k, v in rows[3].items() if k != "id")


def test_gzip_csv_decompresses_to_the_same_rows(c: Container, pg: PgDatabase) -> None:
    plain = extract_once(c, "postgresql", _pg_settings(pg), "everything", "csv")[1]
    run, zipped = extract_once(c, "postgresql", _pg_settings(pg), "everything", "csv", "gzip")
    assert run.files[0].file_name.endswith(".csv.gz")
    assert gzip.decompress(zipped) == plain


def test_copy_fast_path_writes_the_same_bytes_as_the_arrow_path(
    c: Container, pg: PgDatabase
) -> None:
    source = PostgresSource(PostgresSettings(**_pg_settings(pg)), {}, c.policy)
    tables = {t.name: t for t in source.catalog()}
    every = tables["everything"].columns  # times and binary too (2026-12-03)
    plan = ReadPlan(TableRef("public", "everything"), every, every)
    assert source.can_copy(plan, Rendering.CSV)

    def render(fast: bool) -> bytes:
        key = f"cmp/{fast}.csv"
        sink = FileSink(c.storage, key, "csv", "none", arrow_schema(plan.fields), 1 << 20, "x.csv")
        if fast:
            rows = source.copy_rows(plan, sink.stream, lambda n: None)
            sink.close(rows)
        else:
            for batch in source.read(plan, 1000):
                sink.write(batch)
            sink.close()
        return b"".join(c.storage.stream(key))

    assert render(True) == render(False)


def test_sqlite_types(c: Container, tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, r REAL, s TEXT, bl BLOB, flag BOOLEAN,"
            " d DATE, dt DATETIME, amt DECIMAL(10,2), num NUMERIC, js JSON, late INTEGER)"
        )
        rows = [
            (
                i,
                i / 4,
                f"s{i} {TRICKY}" if i % 2 else "",
                bytes([i % 256]),
                i % 2,
                f"2026-01-{1 + i % 28:02d}",
                f"2026-01-01 10:{i % 60:02d}:00",
                f"{i}.25",
                i * 1.5,
                json.dumps({"i": i}),
                None if i <= 2000 else i,
            )
            for i in range(1, 2501)
        ]
        db.executemany(f"INSERT INTO t VALUES ({', '.join('?' * 11)})", rows)
    settings = {"path": str(path)}
    for fmt in ("csv", "jsonl", "parquet"):
        run, data = extract_once(c, "sqlite", settings, "t", fmt)
        assert run.status is RunStatus.COMPLETED, run.error_message
        assert run.record_count == 2500
        if fmt == "parquet":
            got = {r["id"]: r for r in pq.read_table(io.BytesIO(data)).to_pylist()}
            r = got[2001]
            assert r["late"] == 2001 and got[1]["late"] is None
            assert r["amt"] == Decimal("2001.25") and r["flag"] is True
            assert r["dt"] == datetime(2026, 1, 1, 10, 21) and r["d"] == date(2026, 1, 14)
            assert r["bl"] == bytes([2001 % 256]) and r["js"] == '{"i": 2001}'
        elif fmt == "jsonl":
            got = {r["id"]: r for r in map(json.loads, data.decode().splitlines())}
            r = got[2001]
            assert (r["late"], r["amt"], r["flag"], r["js"]) == (2001, "2001.25", True, {"i": 2001})
            assert r["dt"] == "2026-01-01T10:21:00.000000" and got[2]["s"] == ""
        else:
            got = {int(r["id"]): r for r in csv.DictReader(io.StringIO(data.decode()))}
            r = got[2001]
            assert (r["late"], r["amt"], r["flag"], r["s"]) == (
                "2001",
                "2001.25",
                "true",
                f"s2001 {TRICKY}",
            )
            assert got[1]["late"] == "" and got[2]["s"] == ""


def test_source_failure_fails_the_run_with_the_drivers_message(
    c: Container, pg: PgDatabase
) -> None:
    with pg.connect() as conn:
        conn.execute("CREATE TABLE doomed (id int)")
        conn.execute("INSERT INTO doomed VALUES (1)")
    ws = c.workspaces.ensure_workspace("t")
    conn_rec = c.connections.create(ws, "doom", "postgresql", _pg_settings(pg), None)
    c.services.catalog.discover(ws, conn_rec.id)
    tpl = next(
        t
        for t in c.templates.list_page(ws, conn_rec.id, PageRequest(0, 50)).items
        if t.name == "public.doomed"
    )
    cfg_id = submitted_configuration(c, ws, tpl.id, "doomed", format="parquet")
    with pg.connect() as conn:
        conn.execute("DROP TABLE doomed")
    ex, _ = c.services.executions.trigger(ws, cfg_id, {})
    c.worker().run_once()
    run = c.executions.get(ws, cfg_id, ex.id).latest
    assert run.status is RunStatus.FAILED
    assert run.error_message is not None and "does not exist" in run.error_message
    assert run.files == [] and list(c.storage.list()) == []


def test_empty_table_completes_with_no_data_and_no_file(c: Container, pg: PgDatabase) -> None:
    run, data = extract_once(c, "postgresql", _pg_settings(pg), "empty", "csv")
    assert run.status is RunStatus.COMPLETED_NO_DATA and run.record_count == 0
    assert run.files == [] and data == b""
    assert [o.key for o in c.storage.list()] == []


MYSQL_TABLE = """CREATE TABLE everything (
    id BIGINT PRIMARY KEY, b TINYINT(1), i INT, ui INT UNSIGNED, ub BIGINT UNSIGNED, f FLOAT,
    d DOUBLE, n DECIMAL(12,2), s VARCHAR(50), tx LONGTEXT, dt DATE, tm TIME(6),
    ts DATETIME(6), tz TIMESTAMP(6) NULL, bl BLOB, bt BIT(1), e ENUM('a','b'))"""


def test_mysql_types(c: Container, mysql_db: MysqlDatabase) -> None:
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute(MYSQL_TABLE)
        cur.execute("SET time_zone = '+02:00'")  # inserted with a non-UTC session
        cur.execute(
            "INSERT INTO everything VALUES (1, 1, -5, 4000000000, 18446744073709551615, 1.5,"
            " -2.25e100, -1234567890.12, %s, '', '1000-01-01', '23:59:59.999999',"
            " '2026-05-28 14:00:00.123456', '2026-05-28 18:00:00', X'0001FF', b'1', 'b')",
            (TRICKY,),
        )
        cur.execute("INSERT INTO everything (id, b, bt) VALUES (2, 0, b'0'), (3, NULL, NULL)")
    settings = mysql_db.settings
    for fmt in ("csv", "jsonl", "parquet"):
        run, data = extract_once(c, "mysql", {**settings}, "everything", fmt)
        assert run.status is RunStatus.COMPLETED and run.record_count == 3, run.error_message
        if fmt == "parquet":
            rows = {r["id"]: r for r in pq.read_table(io.BytesIO(data)).to_pylist()}
            one = rows[1]
            assert (one["b"], one["i"], one["ui"]) == (True, -5, 4000000000)
            assert one["ub"] == Decimal("18446744073709551615")
            assert (one["f"], one["d"], one["n"]) == (1.5, -2.25e100, Decimal("-1234567890.12"))
            assert (one["s"], one["tx"], one["e"]) == (TRICKY, "", "b")
            # MySQL TIME is a duration (issue 11): duration[us] in Parquet
            assert (one["dt"], one["tm"]) == (date(1000, 1, 1), timedelta(hours=24) - _US)
            assert one["ts"] == datetime(2026, 5, 28, 14, 0, 0, 123456)
            assert one["tz"] == datetime(2026, 5, 28, 16, 0, tzinfo=UTC)
            assert (one["bl"], one["bt"], rows[2]["bt"], rows[2]["b"]) == (
                b"\x00\x01\xff",
                True,
                False,
                False,
            )
            assert all(v is None for k, v in rows[3].items() if k != "id")
        elif fmt == "jsonl":
            rows = {r["id"]: r for r in map(json.loads, data.decode().splitlines())}
            one = rows[1]
            assert (one["ub"], one["n"], one["tz"]) == (
                "18446744073709551615",
                "-1234567890.12",
                "2026-05-28T16:00:00.000000Z",
            )
            assert base64.b64decode(one["bl"]) == b"\x00\x01\xff" and one["bt"] is True
        else:
            rows = {r["id"]: r for r in csv.DictReader(io.StringIO(data.decode()))}
            assert (rows["1"]["s"], rows["1"]["tx"], rows["3"]["s"]) == (TRICKY, "", "")
            assert rows["1"]["ts"] == "2026-05-28 14:00:00.123456"


def test_a_sqlite_value_that_does_not_fit_its_column_fails_the_run(
    c: Container, tmp_path: Path
) -> None:
    """SQLite stores 2.5 in an INTEGER column; writing 2 would be a silent change."""
    path = tmp_path / "loose.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE loose (id INTEGER PRIMARY KEY, qty INTEGER)")
        db.executemany("INSERT INTO loose VALUES (?, ?)", [(1, 3), (2, 2.5), (3, 4)])
    run, data = extract_once(c, "sqlite", {"path": str(path)}, "loose", "parquet")
    assert run.status is RunStatus.FAILED
    assert run.error_message == (
        "column 'qty' is declared int64 but holds 2.5: not a whole number; it would lose its"
        " fraction"
    )
    assert data == b"" and run.files == []


SQLITE_EDGE_TABLE = (
    "CREATE TABLE edge (id INTEGER PRIMARY KEY, big INTEGER, r REAL, s TEXT, bl BLOB,"
    " flag BOOLEAN, d DATE, dt DATETIME, tz TIMESTAMPTZ, amt DECIMAL(38,10))"
)
SQLITE_EDGE_ROWS: list[tuple[Any, ...]] = [
    (
        1,
        9223372036854775807,
        -1.7976931348623157e308,
        TRICKY,
        b"\x00\xff",
        1,
        "0001-01-01",
        "9999-12-31 23:59:59.999999",
        "2026-05-28 16:00:00+00:00",
        "12345.0123456789",  # SQLite keeps 15 significant digits of a NUMERIC (a REAL)
    ),
    (
        2,
        -9223372036854775808,
        5e-324,
        "",
        b"",
        0,
        "9999-12-31",
        "1970-01-01 00:00:00",
        "1969-12-31 23:59:59+00:00",
        "-0.0000000001",
    ),
    (3, *([None] * 9)),
]


def test_sqlite_edge_values_in_every_format(c: Container, tmp_path: Path) -> None:
    path = tmp_path / "edge.db"
    with sqlite3.connect(path) as db:
        db.execute(SQLITE_EDGE_TABLE)
        db.executemany(f"INSERT INTO edge VALUES ({', '.join('?' * 10)})", SQLITE_EDGE_ROWS)
    want = {
        1: {
            "big": 9223372036854775807,
            "r": -1.7976931348623157e308,
            "s": TRICKY,
            "bl": b"\x00\xff",
            "flag": True,
            "d": date(1, 1, 1),
            "dt": datetime(9999, 12, 31, 23, 59, 59, 999999),
            "tz": datetime(2026, 5, 28, 16, 0, tzinfo=UTC),
            "amt": Decimal("12345.0123456789"),
        },
        2: {
            "big": -9223372036854775808,
            "r": 5e-324,
            "s": "",
            "bl": b"",
            "flag": False,
            "d": date(9999, 12, 31),
            "dt": datetime(1970, 1, 1),
            "tz": datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
            "amt": Decimal("-0.0000000001"),
        },
        3: dict.fromkeys(["big", "r", "s", "bl", "flag", "d", "dt", "tz", "amt"]),
    }
    settings = {"path": str(path)}

    _run, data = extract_once(c, "sqlite", settings, "edge", "parquet")
    table = pq.read_table(io.BytesIO(data))
    assert str(table.schema.field("amt").type) == "decimal128(38, 10)"
    assert {r.pop("id"): r for r in table.to_pylist()} == want

    def decoded(row: dict[str, Any], text_bytes: bool) -> dict[str, Any]:
        def value(key: str, v: Any) -> Any:
            if v is None or (v == "" and key not in ("s", "bl")):
                return None
            return {
                "bl": base64.b64decode,
                "d": date.fromisoformat,
                "dt": datetime.fromisoformat,
                "tz": datetime.fromisoformat,
                "amt": Decimal,
                "big": int,
                "r": float,
                "flag": (lambda x: x == "true") if text_bytes else (lambda x: x),
            }.get(key, lambda x: x)(v)

        return {k: value(k, v) for k, v in row.items() if k != "id"}

    _run, data = extract_once(c, "sqlite", settings, "edge", "jsonl")
    got = {r["id"]: decoded(r, False) for r in map(json.loads, data.decode().splitlines())}
    assert got == want
    assert '"amt":"-0.0000000001"' in data.decode()  # plain digits with the scale, no 1E-10

    _run, data = extract_once(c, "sqlite", settings, "edge", "csv")
    got = {int(r["id"]): decoded(r, True) for r in csv.DictReader(io.StringIO(data.decode()))}
    # csv.DictReader reads "" and NULL alike: row 3's NULLs come back as the empty text/bytes.
    assert got == {**want, 3: {**want[3], "s": "", "bl": b""}}
    assert data.decode().splitlines()[-1] == "3" + "," * 9
    assert '2,-9223372036854775808,5e-324,"",""' in data.decode()


def test_mysql_edge_values_in_every_format(c: Container, mysql_db: MysqlDatabase) -> None:
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE edge (id INT PRIMARY KEY, big BIGINT, i INT, d DOUBLE,"
            " wide DECIMAL(65,30), s VARCHAR(60) CHARACTER SET utf8mb4, dt DATE,"
            " ts DATETIME(6), tz TIMESTAMP(6) NULL)"
        )
        cur.execute("SET time_zone = '+00:00'")
        cur.executemany(
            "INSERT INTO edge VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    1,
                    9223372036854775807,
                    -2147483648,
                    1.7976931348623157e308,
                    "12345678901234567890123456789012345.123456789012345678901234567891",
                    TRICKY,
                    "1000-01-01",
                    "9999-12-31 23:59:59.999999",
                    "1970-01-01 00:00:01",
                ),
                (
                    2,
                    -9223372036854775808,
                    2147483647,
                    -5e-324,
                    "-0.000000000000000000000000000001",
                    "",
                    "9999-12-31",
                    "1000-01-01 00:00:00",
                    "2038-01-19 03:14:07.999999",
                ),
                (3, *([None] * 8)),
            ],
        )
    want = {
        1: {
            "big": 9223372036854775807,
            "i": -2147483648,
            "d": 1.7976931348623157e308,
            "wide": "12345678901234567890123456789012345.123456789012345678901234567891",
            "s": TRICKY,
            "dt": date(1000, 1, 1),
            "ts": datetime(9999, 12, 31, 23, 59, 59, 999999),
            "tz": datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
        },
        2: {
            "big": -9223372036854775808,
            "i": 2147483647,
            "d": -5e-324,
            "wide": "-0.000000000000000000000000000001",
            "s": "",
            "dt": date(9999, 12, 31),
            "ts": datetime(1000, 1, 1),
            "tz": datetime(2038, 1, 19, 3, 14, 7, 999999, tzinfo=UTC),
        },
        3: dict.fromkeys(["big", "i", "d", "wide", "s", "dt", "ts", "tz"]),
    }
    settings = {**mysql_db.settings}

    run, data = extract_once(c, "mysql", settings, "edge", "parquet")
    assert run.status is RunStatus.COMPLETED, run.error_message
    table = pq.read_table(io.BytesIO(data))
    assert str(table.schema.field("wide").type) == "string"  # beyond 38 digits: exact text
    assert {r.pop("id"): r for r in table.to_pylist()} == want

    def decoded(row: dict[str, Any]) -> dict[str, Any]:
        parse: dict[str, Any] = {
            "big": int,
            "i": int,
            "d": float,
            "dt": date.fromisoformat,
            "ts": datetime.fromisoformat,
            "tz": datetime.fromisoformat,
        }
        return {
            k: None if v is None or (v == "" and k != "s") else parse.get(k, lambda x: x)(v)
            for k, v in row.items()
            if k != "id"
        }

    _run, data = extract_once(c, "mysql", settings, "edge", "jsonl")
    assert {r["id"]: decoded(r) for r in map(json.loads, data.decode().splitlines())} == want

    _run, data = extract_once(c, "mysql", settings, "edge", "csv")
    rows = {int(r["id"]): decoded(r) for r in csv.DictReader(io.StringIO(data.decode()))}
    assert rows == {**want, 3: {**want[3], "s": ""}}  # "" vs NULL: see the raw line below
    assert data.decode().splitlines()[-1] == "3" + "," * 8


# --- issue 11: the types real schemas carry -------------------------------------------------


def strict_json_lines(data: bytes) -> list[dict[str, Any]]:
    """Parse JSONL as JSON.parse would: bare NaN/Infinity are rejected."""

    def refuse(token: str) -> Any:
        raise ValueError(f"not JSON: {token}")

    return [json.loads(line, parse_constant=refuse) for line in data.decode().splitlines()]


PG_SPECIAL_TABLE = """CREATE TABLE special (
    id int PRIMARY KEY, ts timestamp, tz timestamptz, d date, f float8, r real,
    ia int[], ta text[], na numeric[], tsa timestamp[], m money, o oid, rc regclass,
    n numeric, iv interval)"""
PG_SPECIAL_ROWS = """INSERT INTO special VALUES
 (1, '2026-05-28 14:00:00.5', '2026-05-28 16:00:00+00', '2026-05-28', 'NaN', 'Infinity',
  '{1,2,NULL}', ARRAY['a,b', 'c"d', NULL], '{1.50,NaN}', '{2020-01-01 10:00:00}', 12.34,
  4000000000, 'pg_class', 'NaN', '1 day 2 hours 3.5 seconds'),
 (2, NULL, NULL, NULL, '-Infinity', -0.5, '{}', '{}', NULL, NULL, -1, 0, NULL, 1.5, '-1 mon'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"""


# BC (1 BC is year 0), the first and last years of 1-9999, five-digit years and the extremes
# PostgreSQL holds that Arrow can write as text, as timestamp, timestamptz and date.
ODD_YEARS = [
    ("0044-03-15 12:00:00.5 BC", "0044-03-15 BC"),
    ("0001-12-31 23:59:59.999999 BC", "0001-12-31 BC"),
    ("0001-01-01 00:00:00 BC", "0001-01-01 BC"),
    ("0001-01-01 00:00:00", "0001-01-01"),
    ("9999-12-31 23:59:59.999999", "9999-12-31"),
    ("10000-01-01 00:00:00", "10000-01-01"),
    ("32767-12-31 23:59:59.999999", "32767-12-31"),
    ("4713-01-01 00:00:00 BC", "4713-01-01 BC"),
]


# Times of day with every fraction length, PostgreSQL's end of a day (24:00), and bytea whose
# base64 is empty, short, and longer than the 76 characters PostgreSQL's encode() breaks at.
CLOCK_TABLE = "CREATE TABLE clock (id int PRIMARY KEY, t time, t3 time(3), b bytea)"
CLOCK_ROWS = r"""INSERT INTO clock VALUES
 (1, '24:00:00', '12:00:00.5', '\x'), (2, '00:00:00', '23:59:59.999', '\x00ff'),
 (3, '12:34:56.000001', '01:02:03.12', decode(repeat('ab01', 100), 'hex')),
 (4, '23:59:59.99999', '00:00:00.001', '\x3e3f'), (5, NULL, NULL, NULL),
 (6, '06:07:08.1234', NULL, NULL)"""


# Arrays the COPY path writes as JSON itself: every character JSON escapes (the C0 controls,
# quotes, backslashes), non-ASCII, NULL elements, empty and NULL arrays, a lower bound of 0,
# and element types read as text (uuid, char(3) with its padding, json).
ARRAYS_TABLE = """CREATE TABLE arrays (id int PRIMARY KEY, t text[], i int8[], s int2[],
    b bool[], v varchar(10)[], u uuid[], c char(3)[], j json[], n numeric(8,3)[], m money[])"""
AWKWARD_TEXTS = [
    'a"b',
    "back\\slash",
    "tab\tnew\nline\rcr",
    "".join(map(chr, range(1, 32))),
    "\x7f del",
    "Zürich 🎉 \u2028",
    "",
    None,
    "{braces}",
    "NULL",
]
ARRAYS_ROWS = """INSERT INTO arrays VALUES
 (1, %s, '{1,-9223372036854775808,NULL}', '{32767}', '{t,f,NULL}', '{"a,b",""}',
  '{f47ac10b-58cc-4372-a567-0e02b2c3d479}', '{ab,x}', ARRAY['{"k": [1, "x"]}'::json, NULL],
  '{1.5,-0.0001,NaN,NULL,12345.678}', '{12.34,-0.01}'),
 (2, '{}', '[0:1]={7,8}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"""

# Arrays whose elements the COPY path renders one by one in SQL (``array_to_json`` writes
# them its own way): doubles around Python's switch to exponents (1e15 to 1e16), whole numbers,
# negative zero, the extremes, NaN and infinities; singles (written as the double they widen
# to); dates, times, timestamps with infinities, BC and five-digit years, every fraction
# length, 24:00; bytea longer than encode()'s 76-character lines; empty, NULL and [0:1] arrays.
ELEMENTS_TABLE = """CREATE TABLE elements (id int PRIMARY KEY, f float8[], r real[], d date[],
    t time[], ts timestamp[], tz timestamptz[], b bytea[])"""
ELEMENTS_ROWS = r"""INSERT INTO elements VALUES
 (1, '{1e15,-1e15,1.5e15,1234567890123456.7,-9999999999999998,1e16,1.5e16,100,-0,0.1,5e-324,
       1.7976931348623157e308,NaN,Infinity,-Infinity,NULL,1e-05,0.0001,123.456,-2.5e-300,
       1e150,-1.5e151,2e-15}',
  '{0.1,1e-45,3.4028235e38,NaN,-Infinity,16777216,NULL,-0,1e15}',
  '{infinity,-infinity,0044-03-15 BC,10000-01-01,0001-01-01,NULL,2026-05-28}',
  '{24:00:00,00:00:00,12:34:56.5,01:02:03.123456,NULL,23:59:59.99}',
  '{infinity,-infinity,0044-03-15 12:00:00.5 BC,10000-01-01 00:00:00,2026-05-28 14:00:00,
    2026-05-28 14:00:00.120,NULL}',
  '{infinity,2026-05-28 16:00:00+02,0001-01-01 00:00:00+00 BC,2026-01-01 00:00:00.000001+00}',
  ARRAY['\x'::bytea, '\x00ff', NULL, decode(repeat('ab01', 100), 'hex')]),
 (2, '{}', '{}', '{}', '{}', '{}', '{}', '{}'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, '[0:1]={2.5,3}', '[0:0]={1}', '{2026-01-01}', '{00:00:01}', '{2026-01-01 00:00:00}',
  '{2026-01-01 00:00:00+00}', '{"\\x41"}')"""


@pytest.fixture
def special(pg_db: PgDatabase) -> PgDatabase:
    with pg_db.connect() as conn:
        conn.execute(PG_SPECIAL_TABLE)
        conn.execute(PG_SPECIAL_ROWS)
        conn.execute("CREATE TABLE inf (id int PRIMARY KEY, a timestamp, b timestamptz, c date)")
        conn.execute("INSERT INTO inf VALUES (1, 'infinity', '-infinity', 'infinity')")
        conn.execute("INSERT INTO inf VALUES (2, '-infinity', 'infinity', '-infinity')")
        conn.execute("INSERT INTO inf VALUES (3, '2026-01-02 03:04:05', NULL, '2026-01-02')")
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("CREATE TABLE odd (id int PRIMARY KEY, ts timestamp, tz timestamptz, d date)")
        for i, (stamp, day) in enumerate(ODD_YEARS):
            conn.execute("INSERT INTO odd VALUES (%s, %s, %s, %s)", (i, stamp, stamp, day))
        conn.execute("INSERT INTO odd VALUES (%s, NULL, NULL, NULL)", (len(ODD_YEARS),))
        conn.execute(CLOCK_TABLE)
        conn.execute(CLOCK_ROWS)
        conn.execute(ARRAYS_TABLE)
        conn.execute(ARRAYS_ROWS, (AWKWARD_TEXTS,))
        conn.execute(ELEMENTS_TABLE)
        conn.execute(ELEMENTS_ROWS)
    return pg_db


def test_postgres_infinity_is_a_word_in_text_formats(c: Container, special: PgDatabase) -> None:
    run, data = extract_once(c, "postgresql", _pg_settings(special), "inf", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines() == [
        '"id","a","b","c"',
        '1,"infinity","-infinity","infinity"',
        '2,"-infinity","infinity","-infinity"',
        '3,"2026-01-02 03:04:05.000000",,"2026-01-02"',
    ]
    run, data = extract_once(c, "postgresql", _pg_settings(special), "inf", "jsonl")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert strict_json_lines(data) == [
        {"id": 1, "a": "infinity", "b": "-infinity", "c": "infinity"},
        {"id": 2, "a": "-infinity", "b": "infinity", "c": "-infinity"},
        {"id": 3, "a": "2026-01-02T03:04:05.000000", "b": None, "c": "2026-01-02"},
    ]


def test_postgres_infinity_fails_a_parquet_run_naming_the_column(
    c: Container, special: PgDatabase
) -> None:
    run, data = extract_once(c, "postgresql", _pg_settings(special), "inf", "parquet")
    assert run.status is RunStatus.FAILED and data == b""
    assert run.error_message == (
        "column 'a' holds 'infinity', which Parquet cannot represent; export it as CSV or"
        " JSONL, or filter it out with a whereClause"
    )


def test_the_end_of_a_day_is_24_00_in_text_and_fails_parquet(
    c: Container, special: PgDatabase
) -> None:
    """PostgreSQL's ``time '24:00'`` (Arrow's text of it was "<value out of range: …>", in a
    COMPLETED run): ``24:00:00.000000`` in CSV and JSONL; Parquet's TIME cannot hold it."""
    settings = _pg_settings(special)
    run, data = extract_once(c, "postgresql", settings, "clock", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    lines = data.decode().splitlines()
    assert lines[:3] == [
        '"id","t","t3","b"',
        '1,"24:00:00.000000","12:00:00.500000",""',
        '2,"00:00:00.000000","23:59:59.999000","AP8="',
    ]
    assert (
        lines[3].split(",")[3] == '"' + base64.b64encode(bytes.fromhex("ab01" * 100)).decode() + '"'
    )
    assert lines[5] == "5,,,"
    run, data = extract_once(c, "postgresql", settings, "clock", "jsonl")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert strict_json_lines(data)[0] == {
        "id": 1,
        "t": "24:00:00.000000",
        "t3": "12:00:00.500000",
        "b": "",
    }
    run, data = extract_once(c, "postgresql", settings, "clock", "parquet")
    assert run.status is RunStatus.FAILED and data == b""
    assert run.error_message == (
        "column 't' holds a time of day at or past 24:00:00, which Parquet cannot represent;"
        " export it as CSV or JSONL, or filter it out with a whereClause"
    )


def test_postgres_special_types_in_every_format(c: Container, special: PgDatabase) -> None:
    settings = _pg_settings(special)
    run, data = extract_once(c, "postgresql", settings, "special", "jsonl")
    assert run.status is RunStatus.COMPLETED, run.error_message
    rows = {r.pop("id"): r for r in strict_json_lines(data)}
    assert rows[1] == {
        "ts": "2026-05-28T14:00:00.500000",
        "tz": "2026-05-28T16:00:00.000000Z",
        "d": "2026-05-28",
        "f": "NaN",
        "r": "Infinity",
        "ia": [1, 2, None],
        "ta": ["a,b", 'c"d', None],
        "na": ["1.50", "NaN"],
        "tsa": ["2020-01-01T10:00:00.000000"],
        "m": "12.34",
        "o": 4000000000,
        "rc": 1259,  # pg_class's oid
        "n": "NaN",
        "iv": "P1DT2H3.5S",
    }
    assert (rows[2]["f"], rows[2]["ia"], rows[2]["ta"], rows[2]["m"], rows[2]["o"]) == (
        "-Infinity",
        [],
        [],
        "-1.00",
        0,
    )
    assert rows[2]["iv"] == "P-1M"
    assert all(v is None for v in rows[3].values())

    run, data = extract_once(c, "postgresql", settings, "special", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    got = {r["id"]: r for r in csv.DictReader(io.StringIO(data.decode()))}
    assert json.loads(got["1"]["ia"]) == [1, 2, None]
    assert json.loads(got["1"]["ta"]) == ["a,b", 'c"d', None]
    assert (got["1"]["m"], got["1"]["o"], got["1"]["rc"], got["1"]["n"]) == (
        "12.34",
        "4000000000",
        "1259",
        "NaN",
    )
    assert got["2"]["ia"] == "[]" and got["3"]["ia"] == ""

    run, data = extract_once(c, "postgresql", settings, "special", "parquet")
    assert run.status is RunStatus.COMPLETED, run.error_message
    table = pq.read_table(io.BytesIO(data))
    types = {f.name: str(f.type) for f in table.schema}
    assert types["ia"] == "list<element: int32>" and types["ta"] == "list<element: string>"
    assert types["o"] == "int64" and types["m"] == "string" and types["n"] == "string"
    parquet_rows = {r.pop("id"): r for r in table.to_pylist()}
    one = parquet_rows[1]
    assert one["ia"] == [1, 2, None] and one["ta"] == ["a,b", 'c"d', None]
    assert one["tsa"] == [datetime(2020, 1, 1, 10)]
    assert one["f"] != one["f"] and one["r"] == float("inf")  # NaN stays NaN in Parquet
    assert (one["m"], one["o"], one["n"]) == ("12.34", 4000000000, "NaN")
    assert parquet_rows[2]["ia"] == [] and parquet_rows[3]["ia"] is None


# Types whose cast to text is not their own text. char(n) holds its value blank-padded to n
# (psql, pg_dump and the drivers all show the padding), which a cast to text strips; a domain
# over it is the same; varchar keeps what it was given. inet's cast to text adds a host's /32
# (psql shows '192.168.1.5'). Arrays of them too, with bounds and quoted elements.
PADDED_TABLE = """CREATE DOMAIN code5 AS char(5);
CREATE TABLE padded (id int PRIMARY KEY, c char(4), d code5, v varchar(5), a char(3)[], f real,
  ip inet, ips inet[]);
INSERT INTO padded VALUES
 (1, 'ab', 'x', 'y  ', '{ab,x}', 1.5, '192.168.1.5', '{10.0.0.1/8,NULL,2001:db8::1}'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, '', 'é', '', '{"", "a,b"}', 0, '2001:db8::1/128', '[0:0]={::ffff:1.2.3.4}'),
 (4, 'abcd', 'ab', ' z', '{}', -1, '10.1.0.0/16', '{}');
CREATE DOMAIN code5b AS code5; CREATE DOMAIN host AS inet; CREATE DOMAIN host2 AS host;
CREATE DOMAIN cents AS numeric(10,2); CREATE DOMAIN cents2 AS cents;
CREATE TABLE nested (id int PRIMARY KEY, d2 code5b, da code5[], h2 host2, ha host[], m2 cents2);
INSERT INTO nested VALUES (1, 'x', '{x,NULL}', '192.168.1.5', '{192.168.1.5}', 12.5),
 (2, NULL, NULL, NULL, NULL, NULL)"""
PADDED = [
    {
        "id": 1,
        "c": "ab  ",
        "d": "x    ",
        "v": "y  ",
        "a": ["ab ", "x  "],
        "ip": "192.168.1.5",
        "ips": ["10.0.0.1/8", None, "2001:db8::1"],
    },
    {"id": 2, "c": None, "d": None, "v": None, "a": None, "ip": None, "ips": None},
    {
        "id": 3,
        "c": "    ",
        "d": "é    ",
        "v": "",
        "a": ["   ", "a,b"],
        "ip": "2001:db8::1",
        "ips": ["::ffff:1.2.3.4"],
    },
    {"id": 4, "c": "abcd", "d": "ab   ", "v": " z", "a": [], "ip": "10.1.0.0/16", "ips": []},
]


@pytest.fixture
def padded(pg_db: PgDatabase) -> PgDatabase:
    with pg_db.connect() as conn:
        conn.execute(PADDED_TABLE)
    return pg_db


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_char_n_and_inet_keep_their_own_text_in_every_format(
    c: Container, padded: PgDatabase, fmt: str
) -> None:
    """``char(n)`` was read through a cast to text, which strips the padding: a COMPLETED run
    wrote ``ab`` for ``'ab  '``."""
    run, data = extract_once(c, "postgresql", _pg_settings(padded), "padded", fmt)
    assert run.status is RunStatus.COMPLETED, run.error_message
    if fmt == "parquet":
        rows = pq.read_table(io.BytesIO(data)).to_pylist()
    elif fmt == "jsonl":
        rows = strict_json_lines(data)
    else:  # NULL is an empty field ("" from the reader), an empty string "" a quoted one
        assert data.decode().splitlines()[2].startswith("2,,,,")
        rows = [
            {
                **r,
                "id": int(r["id"]),
                **{k: json.loads(r[k]) if r[k] else None for k in ("a", "ips")},
            }
            for r in csv.DictReader(io.StringIO(data.decode()))
        ]
    got = sorted(({k: r[k] for k in PADDED[0]} for r in rows), key=lambda r: r["id"])
    if fmt == "csv":
        assert got == [
            {k: "" if v is None and k not in ("a", "ips") else v for k, v in r.items()}
            for r in PADDED
        ]
    else:
        assert got == PADDED


def test_domains_over_domains_and_arrays_of_domains_are_read_as_their_base_type(
    c: Container, padded: PgDatabase
) -> None:
    """The catalog resolved one level of domain, and an array of a domain not at all: a domain
    over a domain over char(n) lost its padding, an array of a domain over inet got /32s, and
    a domain over a domain over numeric(10,2) was a string."""
    source = PostgresSource(PostgresSettings(**_pg_settings(padded)), {}, c.policy)
    fields = {t.name: t for t in source.catalog()}["nested"].columns
    assert [(f.name, f.type, f.native) for f in fields] == [
        ("id", "int32", None),
        ("d2", "string", "bpchar"),
        ("da", "list<string>", "bpchar[]"),
        ("h2", "string", "inet"),
        ("ha", "list<string>", "inet[]"),
        ("m2", "decimal(10,2)", None),
    ]
    described = source.describe("SELECT d2, da, h2, ha, m2 FROM nested")  # a SQL template
    assert [(f.type, f.native) for f in described] == [(f.type, f.native) for f in fields[1:]]
    for fmt in ("csv", "jsonl"):
        run, data = extract_once(c, "postgresql", _pg_settings(padded), "nested", fmt)
        assert run.status is RunStatus.COMPLETED, run.error_message
        assert data.decode().splitlines()[-2:] == (
            [
                '1,"x    ","[""x    "",null]","192.168.1.5","[""192.168.1.5""]",12.50',
                "2,,,,,",
            ]
            if fmt == "csv"
            else [
                '{"id":1,"d2":"x    ","da":["x    ",null],"h2":"192.168.1.5",'
                '"ha":["192.168.1.5"],"m2":"12.50"}',
                '{"id":2,"d2":null,"da":null,"h2":null,"ha":null,"m2":null}',
            ]
        )


@pytest.mark.parametrize("rendering", [Rendering.CSV, Rendering.JSONL])
def test_char_n_and_inet_read_on_the_arrow_path_as_on_copy(
    c: Container, padded: PgDatabase, rendering: Rendering
) -> None:
    source = PostgresSource(PostgresSettings(**_pg_settings(padded)), {}, c.policy)
    fields = {t.name: t for t in source.catalog()}["padded"].columns
    assert [(f.name, f.native) for f in fields if f.native] == [
        ("c", "bpchar"),
        ("d", "bpchar"),
        ("a", "bpchar[]"),
        ("ip", "inet"),
        ("ips", "inet[]"),
    ]
    described = source.describe("SELECT c, c::text AS t, d, a, ips FROM padded")  # SQL template
    assert [(f.type, f.native) for f in described] == [
        ("string", "bpchar"),
        ("string", None),
        ("string", "bpchar"),
        ("list<string>", "bpchar[]"),
        ("list<string>", "inet[]"),
    ]
    plan = ReadPlan(TableRef("public", "padded"), fields, fields)
    arrow = [row for batch in source.read(plan, 1000) for row in batch.to_pylist()]
    assert [{k: r[k] for k in PADDED[0]} for r in sorted(arrow, key=lambda r: r["id"])] == PADDED
    fast = io.BytesIO()
    source.copy_rows(plan, fast, lambda n: None, rendering)
    sink = FileSink(
        c.storage, "cmp/padded", str(rendering), "none", arrow_schema(fields), 1 << 20, "x"
    )
    for batch in source.read(plan, 1000):
        sink.write(batch)
    sink.close()
    assert fast.getvalue() == b"".join(c.storage.stream("cmp/padded"))


def test_a_sql_templates_arrays_are_lists_as_a_tables_are(c: Container, padded: PgDatabase) -> None:
    """A query's result types map as the catalog's do: an array was its text (``_int4`` is no
    type name the mapping knew), ``"{1,NULL}"`` in a string column."""
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, "pg_sql_arrays", "postgresql", _pg_settings(padded), None)
    query = "SELECT id, a, ARRAY[id, NULL] AS ia, ARRAY[1.5::float8] AS fa FROM padded"
    tpl = c.services.catalog.create_query_template(
        ws, conn.id, "arrays", query, ["id"], None, None, role="admin"
    )
    assert [(f.name, f.type) for f in tpl.fields] == [
        ("id", "int32"),
        ("a", "list<string>"),
        ("ia", "list<int32>"),
        ("fa", "list<float64>"),
    ]
    for fmt in ("jsonl", "parquet"):
        cfg = submitted_configuration(c, ws, tpl.id, f"sql_arrays_{fmt}", format=fmt)
        execution, _ = c.services.executions.trigger(ws, cfg, {})
        assert c.worker().run_once()
        run = c.executions.get(ws, cfg, execution.id).latest
        assert run is not None and run.status is RunStatus.COMPLETED, run and run.error_message
        data = b"".join(c.storage.stream(run.files[0].storage_key))
        rows = (
            strict_json_lines(data)
            if fmt == "jsonl"
            else pq.read_table(io.BytesIO(data)).to_pylist()
        )
        assert sorted((r["id"], r["a"], r["ia"], r["fa"]) for r in rows if r["id"] != 2) == [
            (1, ["ab ", "x  "], [1, None], [1.5]),
            (3, ["   ", "a,b"], [3, None], [1.5]),
            (4, [], [4, None], [1.5]),
        ]


def test_char_n_split_values_and_parallel_parts_keep_the_padding(
    c: Container, padded: PgDatabase
) -> None:
    """A split's sub-extract values are the padded values; a parallel read's parts too."""
    run, data = extract_once(
        c, "postgresql", _pg_settings(padded), "padded", "jsonl", parallelism=2
    )
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert [r["c"] for r in strict_json_lines(data)] == [r["c"] for r in PADDED]
    run, _ = extract_once(c, "postgresql", _pg_settings(padded), "padded", "csv", split_by="d")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert sorted(str(f.sub_extract_value) for f in run.files) == [
        "None",
        "ab   ",
        "x    ",
        "é    ",
    ]


def test_postgres_multidimensional_array_fails_naming_the_column(
    c: Container, pg_db: PgDatabase
) -> None:
    """Arrays by ``array_to_json`` (int) and element by element (float8, timestamp) alike."""
    with pg_db.connect() as conn:
        for name, element, one, two in (
            ("grid", "int", "{1,2}", "{{1,2},{3,4}}"),
            ("fgrid", "float8", "{1.5}", "{{1.5},{2}}"),
            ("tgrid", "timestamp", "{2026-01-01}", "{{2026-01-01},{2026-01-02}}"),
            ("cgrid", "char(2)", "{a}", "{{a},{b}}"),  # read by the array's own text
        ):
            conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, g {element}[])")
            conn.execute(f"INSERT INTO {name} VALUES (1, '{one}'), (2, '{two}')")
    for name in ("grid", "fgrid", "tgrid", "cgrid"):
        for fmt in ("csv", "jsonl", "parquet"):
            run, data = extract_once(c, "postgresql", _pg_settings(pg_db), name, fmt)
            assert run.status is RunStatus.FAILED and data == b"", (name, fmt)
            assert run.error_message == (
                "column 'g' holds a 2-dimensional array; only one-dimensional arrays can be"
                " exported (list<T>)"
            )


@pytest.mark.parametrize("rendering", [Rendering.CSV, Rendering.JSONL])
def test_copy_fast_path_matches_the_arrow_path_on_special_values(
    c: Container, special: PgDatabase, rendering: Rendering
) -> None:
    """Infinite dates/timestamps, BC and five-digit years, money, oids, numeric NaN, float
    NaN and infinities, times, bytea, arrays of every element type: COPY and Arrow agree
    byte for byte, CSV and JSONL (JSON columns take the Arrow path for JSONL)."""
    source = PostgresSource(PostgresSettings(**_pg_settings(special)), {}, c.policy)
    tables = {t.name: t for t in source.catalog()}
    fmt = str(rendering)
    for name in ("inf", "special", "odd", "clock", "arrays", "elements"):
        fields = [
            col for col in tables[name].columns if col.type != "json" or rendering is Rendering.CSV
        ]
        plan = ReadPlan(TableRef("public", name), fields, fields)
        assert source.can_copy(plan, rendering)
        fast = io.BytesIO()
        source.copy_rows(plan, fast, lambda n: None, rendering)
        key = f"cmp/{name}.{fmt}"
        sink = FileSink(c.storage, key, fmt, "none", arrow_schema(plan.fields), 1 << 20, "x")
        for batch in source.read(plan, 1000):
            sink.write(batch)
        sink.close()
        assert fast.getvalue() == b"".join(c.storage.stream(key)), name


def test_copy_fast_path_pads_every_fraction_and_renders_odd_years(
    c: Container, pg_db: PgDatabase
) -> None:
    """PostgreSQL's text drops a fraction's trailing zeros; the COPY path pads it to six
    digits by length, writes BC and five-digit years as ISO 8601 astronomical years (1 BC is
    0000, 44 BC -0043) and infinities as words, in UTC for a time-zoned column whatever the
    value's offset."""
    values = [
        "2026-05-28 14:00:00",
        "2026-05-28 14:00:00.1",
        "2026-05-28 14:00:00.12",
        "2026-05-28 14:00:00.123",
        "2026-05-28 14:00:00.1234",
        "2026-05-28 14:00:00.12345",
        "2026-05-28 14:00:00.123456",
        "0001-01-01 00:00:00",
        "9999-12-31 23:59:59.999999",
        "0044-03-15 12:00:00.5 BC",
        "10000-01-01 00:00:00",
        "infinity",
        None,
    ]
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE stamps (id int PRIMARY KEY, ts timestamp, tz timestamptz)")
        for i, v in enumerate(values):
            zoned = None if v is None else v if v == "infinity" else f"{v} +02:00"
            conn.execute("INSERT INTO stamps VALUES (%s, %s, %s)", (i, v, zoned))
    source = PostgresSource(PostgresSettings(**_pg_settings(pg_db)), {}, c.policy)
    fields = {t.name: t for t in source.catalog()}["stamps"].columns
    out = io.BytesIO()
    source.copy_rows(ReadPlan(TableRef("public", "stamps"), fields, fields), out, lambda n: None)
    assert out.getvalue().decode().splitlines() == [
        '"id","ts","tz"',
        '0,"2026-05-28 14:00:00.000000","2026-05-28 12:00:00.000000Z"',
        '1,"2026-05-28 14:00:00.100000","2026-05-28 12:00:00.100000Z"',
        '2,"2026-05-28 14:00:00.120000","2026-05-28 12:00:00.120000Z"',
        '3,"2026-05-28 14:00:00.123000","2026-05-28 12:00:00.123000Z"',
        '4,"2026-05-28 14:00:00.123400","2026-05-28 12:00:00.123400Z"',
        '5,"2026-05-28 14:00:00.123450","2026-05-28 12:00:00.123450Z"',
        '6,"2026-05-28 14:00:00.123456","2026-05-28 12:00:00.123456Z"',
        # 0001-01-01 00:00 +02:00 is 22:00 UTC on the last day of 1 BC: year 0000.
        '7,"0001-01-01 00:00:00.000000","0000-12-31 22:00:00.000000Z"',
        '8,"9999-12-31 23:59:59.999999","9999-12-31 21:59:59.999999Z"',
        '9,"-0043-03-15 12:00:00.500000","-0043-03-15 10:00:00.500000Z"',
        '10,"10000-01-01 00:00:00.000000","9999-12-31 22:00:00.000000Z"',
        '11,"infinity","infinity"',
        "12,,",
    ]


def test_years_outside_1_to_9999_are_iso_years_in_every_format(
    c: Container, special: PgDatabase
) -> None:
    """CSV (the COPY path) and JSONL write ISO 8601 astronomical years; Parquet keeps the
    instant (read back as microseconds/days from 1970)."""
    settings = _pg_settings(special)
    run, data = extract_once(c, "postgresql", settings, "odd", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines() == [
        '"id","ts","tz","d"',
        '0,"-0043-03-15 12:00:00.500000","-0043-03-15 12:00:00.500000Z","-0043-03-15"',
        '1,"0000-12-31 23:59:59.999999","0000-12-31 23:59:59.999999Z","0000-12-31"',
        '2,"0000-01-01 00:00:00.000000","0000-01-01 00:00:00.000000Z","0000-01-01"',
        '3,"0001-01-01 00:00:00.000000","0001-01-01 00:00:00.000000Z","0001-01-01"',
        '4,"9999-12-31 23:59:59.999999","9999-12-31 23:59:59.999999Z","9999-12-31"',
        '5,"10000-01-01 00:00:00.000000","10000-01-01 00:00:00.000000Z","10000-01-01"',
        '6,"32767-12-31 23:59:59.999999","32767-12-31 23:59:59.999999Z","32767-12-31"',
        '7,"-4712-01-01 00:00:00.000000","-4712-01-01 00:00:00.000000Z","-4712-01-01"',
        "8,,,",
    ]
    run, data = extract_once(c, "postgresql", settings, "odd", "jsonl")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert [(r["ts"], r["tz"], r["d"]) for r in strict_json_lines(data)] == [
        ("-0043-03-15T12:00:00.500000", "-0043-03-15T12:00:00.500000Z", "-0043-03-15"),
        ("0000-12-31T23:59:59.999999", "0000-12-31T23:59:59.999999Z", "0000-12-31"),
        ("0000-01-01T00:00:00.000000", "0000-01-01T00:00:00.000000Z", "0000-01-01"),
        ("0001-01-01T00:00:00.000000", "0001-01-01T00:00:00.000000Z", "0001-01-01"),
        ("9999-12-31T23:59:59.999999", "9999-12-31T23:59:59.999999Z", "9999-12-31"),
        ("10000-01-01T00:00:00.000000", "10000-01-01T00:00:00.000000Z", "10000-01-01"),
        ("32767-12-31T23:59:59.999999", "32767-12-31T23:59:59.999999Z", "32767-12-31"),
        ("-4712-01-01T00:00:00.000000", "-4712-01-01T00:00:00.000000Z", "-4712-01-01"),
        (None, None, None),
    ]
    run, data = extract_once(c, "postgresql", settings, "odd", "parquet")
    assert run.status is RunStatus.COMPLETED, run.error_message
    table = pq.read_table(io.BytesIO(data))
    assert str(table.schema.field("tz").type) == "timestamp[us, tz=UTC]"
    micros = table.column("ts").combine_chunks().view(pa.int64()).to_pylist()
    assert micros == table.column("tz").combine_chunks().view(pa.int64()).to_pylist()
    days = table.column("d").combine_chunks().view(pa.int32()).to_pylist()
    with special.connect() as conn:  # PostgreSQL's own count from 1970
        want = conn.execute(
            "SELECT (extract(epoch FROM ts) * 1000000)::int8, d - date '1970-01-01'"
            " FROM odd ORDER BY id"
        ).fetchall()
    assert list(zip(micros, days, strict=True)) == [tuple(w) for w in want]
    assert micros[0] == -63517780799500000 and days[2] == -719528  # 44 BC; 0000-01-01


def test_years_a_path_cannot_write_fail_that_path_naming_the_column(
    c: Container, pg_db: PgDatabase
) -> None:
    """Arrow writes years -32767 to 32767 as text, and ADBC reads timestamps up to int64
    microseconds from 1970 (294247 AD): past those a run fails rather than write
    "<value out of range>" or a wrapped-around instant. The COPY path (CSV and JSONL) writes
    PostgreSQL's own digits for both, exactly; a JSONL run on the Arrow path (a JSON column
    keeps it there) fails naming the column."""
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE late (id int PRIMARY KEY, d date)")
        conn.execute("INSERT INTO late VALUES (1, '32768-01-01'), (2, '5874897-12-31')")
        conn.execute("CREATE TABLE latest (id int PRIMARY KEY, ts timestamp)")
        conn.execute("INSERT INTO latest VALUES (1, '294276-12-31 23:59:59.999999')")
        for name in ("late", "latest"):
            conn.execute(f"CREATE TABLE {name}_array AS SELECT *, '{{}}'::json AS a FROM {name}")
    settings = _pg_settings(pg_db)
    run, data = extract_once(c, "postgresql", settings, "late", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines() == ['"id","d"', '1,"32768-01-01"', '2,"5874897-12-31"']
    run, data = extract_once(c, "postgresql", settings, "late", "jsonl")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines() == [
        '{"id":1,"d":"32768-01-01"}',
        '{"id":2,"d":"5874897-12-31"}',
    ]
    run, data = extract_once(c, "postgresql", settings, "late_array", "jsonl")
    assert run.status is RunStatus.FAILED and data == b""
    assert run.error_message == (
        "column 'd' holds a value dated outside the years -32767 to 32767, which Egress"
        " cannot write as text; export it as Parquet, or filter it out with a whereClause"
    )
    run, data = extract_once(c, "postgresql", settings, "late", "parquet")
    assert run.status is RunStatus.COMPLETED, run.error_message
    days = pq.read_table(io.BytesIO(data)).column("d").combine_chunks().view(pa.int32())
    assert days.to_pylist() == [11248738, 2145042905]  # PostgreSQL's d - '1970-01-01'

    run, data = extract_once(c, "postgresql", settings, "latest", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines() == ['"id","ts"', '1,"294276-12-31 23:59:59.999999"']
    run, data = extract_once(c, "postgresql", settings, "latest", "jsonl")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines() == ['{"id":1,"ts":"294276-12-31T23:59:59.999999"}']
    for table, fmt in (("latest_array", "jsonl"), ("latest", "parquet")):
        run, data = extract_once(c, "postgresql", settings, table, fmt)
        assert run.status is RunStatus.FAILED and data == b"", fmt
        assert run.error_message == (
            "column 'ts' holds a timestamp after 294247-01-10 04:00:54.775807 UTC, which the"
            " PostgreSQL driver cannot read; filter it out with a whereClause"
        )


MYSQL_SPECIAL_TABLE = """CREATE TABLE special (
    id INT PRIMARY KEY, flag TINYINT(1), d DATE, dt DATETIME(6), tm TIME(6), g GEOMETRY,
    p POINT, j JSON, f DOUBLE)"""


def _mysql_special(db: MysqlDatabase) -> None:
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute(MYSQL_SPECIAL_TABLE)
        cur.execute("SET SESSION sql_mode = ''")  # lets legacy zero and invalid dates in
        cur.execute(
            "INSERT INTO special VALUES"
            " (1, 1, '2026-05-28', '2026-05-28 14:00:00.5', '-838:59:59', ST_GeomFromText("
            "'POINT(1 2)', 4326), ST_GeomFromText('POINT(3 4)'), '{\"a\": [1, 2.5]}', 1.5),"
            " (2, 0, '0000-00-00', '0000-00-00 00:00:00', '838:59:59.000001', NULL, NULL,"
            " '[]', -0.0),"
            " (3, NULL, '2026-02-30', NULL, '-00:00:01', NULL, NULL, NULL, NULL)"
        )


def _point_wkb(x: float, y: float) -> bytes:
    import struct

    return struct.pack("<BIdd", 1, 1, x, y)


def test_mysql_special_types_in_every_format(c: Container, mysql_db: MysqlDatabase) -> None:
    _mysql_special(mysql_db)
    settings = {**mysql_db.settings}
    want = {
        1: {
            "flag": True,
            "d": date(2026, 5, 28),
            "dt": datetime(2026, 5, 28, 14, 0, 0, 500000),
            "tm": -timedelta(hours=838, minutes=59, seconds=59),
            "g": _point_wkb(1, 2),
            "p": _point_wkb(3, 4),
            "f": 1.5,
        },
        2: {
            "flag": False,
            "d": None,  # zeroDates "null" (the default)
            "dt": None,
            "tm": timedelta(hours=838, minutes=59, seconds=59, microseconds=1),
            "g": None,
            "p": None,
            "f": -0.0,
        },
        3: {
            "flag": None,
            "d": None,  # an invalid date under a lax sql_mode
            "dt": None,
            "tm": -timedelta(seconds=1),
            "g": None,
            "p": None,
            "f": None,
        },
    }
    run, data = extract_once(c, "mysql", settings, "special", "parquet")
    assert run.status is RunStatus.COMPLETED, run.error_message
    table = pq.read_table(io.BytesIO(data))
    assert str(table.schema.field("tm").type) == "duration[us]"
    assert str(table.schema.field("g").type) == "binary"
    got = {r.pop("id"): r for r in table.to_pylist()}
    assert {k: {n: v for n, v in r.items() if n != "j"} for k, r in got.items()} == want
    assert (got[1]["j"], got[2]["j"]) == ('{"a": [1, 2.5]}', "[]")

    run, data = extract_once(c, "mysql", settings, "special", "jsonl")
    rows = {r.pop("id"): r for r in strict_json_lines(data)}
    assert rows[1] == {
        "flag": True,
        "d": "2026-05-28",
        "dt": "2026-05-28T14:00:00.500000",
        "tm": "-838:59:59.000000",
        "g": base64.b64encode(_point_wkb(1, 2)).decode(),
        "p": base64.b64encode(_point_wkb(3, 4)).decode(),
        "j": {"a": [1, 2.5]},  # JSON embedded as JSON, like PostgreSQL's json
        "f": 1.5,
    }
    assert (rows[2]["d"], rows[2]["tm"], rows[2]["j"], rows[3]["tm"]) == (
        None,
        "838:59:59.000001",
        [],
        "-00:00:01.000000",
    )

    run, data = extract_once(c, "mysql", settings, "special", "csv")
    lines = data.decode().splitlines()
    assert lines[3] == '3,,,,"-00:00:01.000000",,,,'
    first = next(csv.DictReader(io.StringIO(data.decode())))
    assert (first["tm"], first["d"], json.loads(first["j"])) == (
        "-838:59:59.000000",
        "2026-05-28",
        {"a": [1, 2.5]},
    )


def test_mysql_zero_dates_fail_when_asked(c: Container, mysql_db: MysqlDatabase) -> None:
    _mysql_special(mysql_db)
    settings = {**mysql_db.settings, "zeroDates": "fail"}
    run, _ = extract_once(c, "mysql", settings, "special", "csv")
    assert run.status is RunStatus.FAILED
    assert run.error_message == (
        "column 'd' holds the zero or invalid date '0000-00-00'; set the connection's"
        ' zeroDates to "null" to read such dates as NULL'
    )


def test_mysql_tinyint1_other_than_0_or_1(c: Container, mysql_db: MysqlDatabase) -> None:
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE flags (id INT PRIMARY KEY, b TINYINT(1))")
        cur.execute("INSERT INTO flags VALUES (1, 1), (2, 2), (3, -1), (4, 0)")
    run, data = extract_once(c, "mysql", {**mysql_db.settings}, "flags", "jsonl")
    assert run.status is RunStatus.FAILED and data == b""
    assert run.error_message == (
        "column 'b' is TINYINT(1), read as boolean, but holds 2; set the connection's"
        " tinyint1AsBoolean to false to read it as an integer"
    )
    settings = {**mysql_db.settings, "tinyint1AsBoolean": False}
    run, data = extract_once(c, "mysql", settings, "flags", "csv")  # another connection
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines() == ['"id","b"', "1,1", "2,2", "3,-1", "4,0"]


def test_mariadb_json_alias_is_json(c: Container, mysql_db: MysqlDatabase) -> None:
    """MariaDB's JSON is LONGTEXT with a json_valid CHECK: typed json; plain LONGTEXT stays
    a string."""
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE docs (id INT PRIMARY KEY, j JSON, t LONGTEXT)")
        cur.execute("""INSERT INTO docs VALUES (1, '{"k": "v"}', '{"k": "v"}')""")
    run, data = extract_once(c, "mysql", {**mysql_db.settings}, "docs", "jsonl")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert strict_json_lines(data) == [{"id": 1, "j": {"k": "v"}, "t": '{"k": "v"}'}]
