"""JSONL from PostgreSQL rendered by the server (``sources/postgresql/jsonl_copy.py``): the
same bytes as the JSONL writer on the Arrow path, for text that needs every JSON escape,
awkward column names and the number types; a run takes the COPY path only where every field
renders exactly."""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import pytest

from egress.container import Container
from egress.domain.catalog import TableRef
from egress.domain.plan import ReadPlan
from egress.domain.status import RunStatus
from egress.sinks.writers import WRITERS
from egress.sources.arrow_types import arrow_schema
from egress.sources.base import Rendering
from egress.sources.postgresql import PostgresSettings, PostgresSource
from tests.conftest import PgDatabase
from tests.support.factories import extract_once

# Every C0 control character (JSON escapes them all), quotes, backslashes, a slash (not
# escaped), DEL and the line/paragraph separators (not escaped by json.dumps either).
CONTROLS = "".join(chr(i) for i in range(1, 32))
TEXTS = [
    "plain",
    "",
    None,
    CONTROLS,
    'say "hi" \\ back\\slash / slash',
    "del \x7f, u2028 \u2028 u2029 \u2029, ünïcødé, 😀",
    "\\u0041 is not an escape in the data",
]
TIMES = [
    "2026-01-02 03:04:05.123456",
    "2026-01-02 03:04:05",
    "2026-01-02 03:04:05.5",
    "0044-03-15 12:00:00 BC",
    "12026-01-01 00:00:00",
    "infinity",
    "-infinity",
    None,
]
NAMES = ['we"ird', "back\\slash", "it's", "ünï", "a,b", "tab\there", "{}:"]


@pytest.fixture
def db(pg_db: PgDatabase) -> PgDatabase:
    with pg_db.connect() as conn:
        conn.execute(
            "CREATE TABLE texts (id int PRIMARY KEY, t text, v varchar(40), c char(6), n name,"
            " u uuid, big bigint, small smallint, ok boolean, d numeric, d2 numeric(12, 2),"
            " m money, o oid)"
        )
        for i, text in enumerate(TEXTS):
            conn.execute(
                "INSERT INTO texts VALUES (%s, %s, %s, 'ab', 'n', gen_random_uuid(), %s, %s,"
                " %s, %s, %s, %s::numeric::money, %s::bigint::oid)",
                (
                    i,
                    text,
                    None if text is None else text[:40],
                    [-(2**63), 2**63 - 1, None][i % 3],
                    [-32768, 32767, None][i % 3],
                    [True, False, None][i % 3],
                    ["NaN", "Infinity", "-Infinity", "0.000000001", "-12345678901234567890.5"][
                        i % 5
                    ],
                    ["0", "-0.50", "1234567890.12"][i % 3],
                    [-1, 12.34, None][i % 3],
                    [0, 4294967295, None][i % 3],
                ),
            )
        columns = ", ".join(f'"{n.replace(chr(34), chr(34) * 2)}" int' for n in NAMES)
        conn.execute(f'CREATE TABLE "odd names" (id int PRIMARY KEY, {columns})')
        conn.execute(
            f'INSERT INTO "odd names" VALUES (1, {", ".join(str(i) for i in range(len(NAMES)))})'
        )
        conn.execute('INSERT INTO "odd names" (id) VALUES (2)')
        # Dates and timestamps in every form the server's text takes: a fraction or none, BC,
        # a five-digit year, the infinities, null.
        conn.execute("CREATE TABLE times (ts timestamp, tz timestamptz, d date)")
        for value in TIMES:
            conn.execute("INSERT INTO times VALUES (%s, %s, %s)", (value, value, value))
        # One nullable integer: a null is an empty line of CSV (kept, not skipped).
        conn.execute("CREATE TABLE lone (n int)")
        conn.execute("INSERT INTO lone VALUES (1), (NULL), (3), (NULL)")
        # Many blocks of the COPY: lines made from blocks of rows, in order.
        conn.execute("CREATE TABLE many (id int PRIMARY KEY, t text)")
        conn.execute(
            "INSERT INTO many SELECT g, repeat('x', g % 50) || E'\\n' || g"
            " FROM generate_series(1, 40000) g"
        )
        # A value longer than the CSV reader's default block (1 MiB), between short ones.
        conn.execute("CREATE TABLE huge (id int PRIMARY KEY, t text)")
        conn.execute("INSERT INTO huge VALUES (1, 'a'), (2, repeat('ü\"x', 1000000)), (3, 'c')")
        conn.execute("CREATE TABLE floaty (id int PRIMARY KEY, f float8, j jsonb)")
        conn.execute("""INSERT INTO floaty VALUES (1, 0.5, '{"a": [1, 2]}')""")
    return pg_db


def _source(c: Container, db: PgDatabase) -> PostgresSource:
    settings = {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"}
    return PostgresSource(PostgresSettings(**settings), {}, c.policy)


def _plan(source: PostgresSource, table: str) -> ReadPlan:
    fields = {t.name: t for t in source.catalog()}[table].columns
    return ReadPlan(TableRef("public", table), fields, fields)


def _arrow_jsonl(source: PostgresSource, plan: ReadPlan) -> bytes:
    out = io.BytesIO()
    writer = WRITERS["jsonl"](out, arrow_schema(plan.fields))
    for batch in source.read(plan, 1000):
        writer.write(batch)
    writer.close()
    return out.getvalue()


@pytest.mark.parametrize("table", ["texts", "odd names", "times", "lone", "many", "huge"])
def test_the_server_writes_the_jsonl_writers_bytes(
    container: Container, db: PgDatabase, table: str
) -> None:
    source = _source(container, db)
    plan = _plan(source, table)
    assert source.can_copy(plan, Rendering.JSONL)
    copied = io.BytesIO()
    rows = source.copy_rows(plan, copied, lambda _n: None, Rendering.JSONL)
    if table == "many":  # big enough for a parallel scan: rows in no fixed order
        assert sorted(copied.getvalue().split(b"\n")) == sorted(
            _arrow_jsonl(source, plan).split(b"\n")
        )
    else:
        assert copied.getvalue() == _arrow_jsonl(source, plan)
    # Split on newlines only: str.splitlines would also cut at U+2028 and the C0 separators.
    lines = [json.loads(x) for x in copied.getvalue().split(b"\n")[:-1]]
    assert rows == len(lines)
    if table == "texts":
        assert [line["t"] for line in lines] == TEXTS
        assert lines[0]["c"] == "ab    "  # char(6): its padding is its value
        assert lines[0]["big"] == -(2**63) and lines[1]["big"] == 2**63 - 1
        assert [line["d"] for line in lines[:5]] == [
            "NaN",
            "Infinity",
            "-Infinity",
            "0.000000001",
            "-12345678901234567890.5",
        ]
    elif table == "times":
        assert [line["ts"] for line in lines[:3]] == [
            "2026-01-02T03:04:05.123456",
            "2026-01-02T03:04:05.000000",
            "2026-01-02T03:04:05.500000",
        ]
        assert lines[3] == {
            "ts": "-0043-03-15T12:00:00.000000",
            "tz": lines[3]["tz"],
            "d": "-0043-03-15",
        }
        assert [line["d"] for line in lines[5:8]] == ["infinity", "-infinity", None]
    elif table == "lone":
        assert lines == [{"n": 1}, {"n": None}, {"n": 3}, {"n": None}]
    elif table == "huge":
        assert lines == [{"id": 1, "t": "a"}, {"id": 2, "t": 'ü"x' * 1000000}, {"id": 3, "t": "c"}]
    elif table == "many":
        by_id = {line["id"]: line["t"] for line in lines}
        assert sorted(by_id) == list(range(1, 40001))
        assert by_id[40000] == "x" * (40000 % 50) + "\n40000"
    else:
        assert lines == [
            {"id": 1, **{n: i for i, n in enumerate(NAMES)}},
            {"id": 2, **dict.fromkeys(NAMES)},
        ]


def test_json_columns_keep_jsonl_on_the_arrow_path(
    container: Container, db: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON column is re-encoded by the writer; a double takes the COPY (its text re-laid
    out in C: tests/integration/test_copy_floats.py)."""
    source = _source(container, db)
    plan = _plan(source, "floaty")
    double, json_column = [plan.fields[1]], [plan.fields[2]]
    assert source.can_copy(ReadPlan(plan.table, double, double), Rendering.JSONL)
    assert not source.can_copy(ReadPlan(plan.table, json_column, json_column), Rendering.JSONL)
    assert source.can_copy(ReadPlan(plan.table, json_column, json_column), Rendering.CSV)
    copies: list[Any] = []
    monkeypatch.setattr(PostgresSource, "copy_rows", lambda *a: copies.append(a))
    settings = {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"}
    run, data = extract_once(container, "postgresql", settings, "floaty", "jsonl")
    assert run.status is RunStatus.COMPLETED and copies == [], run.error_message
    assert data == b'{"id":1,"f":0.5,"j":{"a":[1,2]}}\n'


def test_a_jsonl_run_goes_through_the_copy_and_writes_the_arrow_paths_file(
    container: Container, db: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"}
    real = PostgresSource.copy_rows
    renderings: list[Rendering] = []

    def spy(self: PostgresSource, plan: ReadPlan, out: Any, report: Any, rendering: Any) -> int:
        renderings.append(rendering)
        return real(self, plan, out, report, rendering)

    monkeypatch.setattr(PostgresSource, "copy_rows", spy)
    run, fast = extract_once(container, "postgresql", settings, "texts", "jsonl")
    assert run.status is RunStatus.COMPLETED and run.record_count == len(TEXTS)
    assert renderings == [Rendering.JSONL]
    monkeypatch.setattr(PostgresSource, "can_copy", lambda *_: False)
    run, slow = extract_once(
        container, "postgresql", settings, "texts", "jsonl", compression="gzip"
    )
    assert run.status is RunStatus.COMPLETED and renderings == [Rendering.JSONL]
    assert fast == gzip.decompress(slow)
