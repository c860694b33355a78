"""Data tables hold exactly the source's values on both warehouses, or the load fails naming
the column: decimals (keys too), NaN, time zones, durations, times and lists."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from egress.api.native.presenters import plain
from egress.api.native.schemas import RowsOut
from egress.container import Container
from egress.domain.identity import Principal, Subject
from egress.domain.paging import PageRequest
from tests.conftest import make_settings
from tests.support.factories import submitted_configuration, warehouse_container
from tests.support.migrated import migrate

pytestmark = pytest.mark.postgres
_n = itertools.count()


@pytest.fixture(params=["sqlite", "pg"])
def c(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    pg = request.getfixturevalue("pg_factory") if request.param == "pg" else None
    with warehouse_container(request.param, tmp_path, pg) as container:
        yield container


def _sqlite(c: Container) -> bool:
    return c.warehouse.engine.dialect.name == "sqlite"


def _pg_source(pg_factory: Any, *statements: str) -> tuple[str, dict[str, Any]]:
    db = pg_factory()
    with db.connect() as conn:
        for s in statements:
            conn.execute(s)
    return "postgresql", {
        "host": "127.0.0.1",
        "port": 5432,
        "database": db.name,
        "user": "postgres",
    }


def _load(
    c: Container, kind: str, settings: dict[str, Any], table: str, secrets: Any = None
) -> tuple[str, Any]:
    """Loads ``table`` by upsert into the data table ``<table>_copy``: (workspace, run)."""
    ws, cfg = _configure(c, kind, settings, table, secrets)
    return ws, _run(c, ws, cfg)


def _configure(
    c: Container, kind: str, settings: dict[str, Any], table: str, secrets: Any = None
) -> tuple[str, str]:
    ws = c.workspaces.ensure_workspace("firm")
    sealed = c.secret_box.seal(secrets) if secrets else None
    conn = c.connections.create(ws, f"src{next(_n)}", kind, settings, sealed)
    c.services.catalog.discover(ws, conn.id)
    tpl = next(
        t
        for t in c.templates.list_page(ws, conn.id, PageRequest(0, 100)).items
        if t.name.split(".")[-1] == table
    )
    dest = {"type": "dataTable", "dataTable": f"{table}_copy", "mode": "upsert"}
    return ws, submitted_configuration(c, ws, tpl.id, f"load_{next(_n)}", destination=dest)


def _run(c: Container, ws: str, cfg: str) -> Any:
    execution, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    return c.executions.get(ws, cfg, execution.id).latest


def _record(c: Container, ws: str, table: str) -> Any:
    items = c.data_tables.list_page(ws, PageRequest(0, 100)).items
    return next(t for t in items if t.name == f"{table}_copy")


def _stored(c: Container, ws: str, table: str, columns: str) -> list[tuple[Any, ...]]:
    """The warehouse table's own values (SQLite: with each value's storage class)."""
    physical = _record(c, ws, table).physical_name
    with c.warehouse.engine.connect() as conn:
        if _sqlite(c):
            names = columns.split(", ")
            cols = ", ".join(f'"{n}", typeof("{n}")' for n in names)
        else:
            cols = ", ".join(f'"{n}"' for n in columns.split(", "))
        return [tuple(r) for r in conn.exec_driver_sql(f'SELECT {cols} FROM "{physical}"')]


def _api(c: Container, ws: str, table: str) -> list[dict[str, Any]]:
    """The rows API's JSON values (two rows a page, so cursors are used)."""
    record = _record(c, ws, table)
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = c.services.data_tables.rows_page(ws, record.id, 2, cursor)
        data = [{k: plain(v) for k, v in row.items()} for row in page.rows]
        out += json.loads(RowsOut(data=data, next_cursor=None).model_dump_json())["data"]
        cursor = page.next_cursor
        if cursor is None:
            return out


def _ok(run: Any) -> None:
    assert run.status.value == "COMPLETED", run.error_message


def test_decimal_keys_and_values_are_stored_exactly(c: Container, pg_factory: Any) -> None:
    kind, settings = _pg_source(
        pg_factory,
        "CREATE TABLE d (id numeric(38,10) PRIMARY KEY, u numeric, s numeric(38,10))",
        "INSERT INTO d VALUES (12345678901234567.1, 1E-30, 0.0000000001),"
        " (12345678901234567.2, 0.1, 1234567890123456789012345678.1234567890),"
        " (1, 'NaN', NULL)",
    )
    ws, run = _load(c, kind, settings, "d")
    _ok(run)
    assert run.record_count == 3
    stored = sorted(_stored(c, ws, "d", "id, u, s"), key=lambda r: str(r[0]))
    if _sqlite(c):  # exact text, never a float
        assert stored == [
            ("1.0000000000", "text", "NaN", "text", None, "null"),
            ("12345678901234567.1000000000", "text", "0.000000000000000000000000000001", "text",
             "0.0000000001", "text"),
            ("12345678901234567.2000000000", "text", "0.1", "text",
             "1234567890123456789012345678.1234567890", "text"),
        ]  # fmt: skip
    else:
        assert {r[0] for r in stored} == {
            Decimal("1"),
            Decimal("12345678901234567.1"),
            Decimal("12345678901234567.2"),
        }
    rows = sorted(_api(c, ws, "d"), key=lambda r: r["id"])
    assert rows == [
        {"id": "1.0000000000", "u": "NaN", "s": None},
        {"id": "12345678901234567.1000000000", "u": "0.000000000000000000000000000001",
         "s": "0.0000000001"},
        {"id": "12345678901234567.2000000000", "u": "0.1",
         "s": "1234567890123456789012345678.1234567890"},
    ]  # fmt: skip


def test_composite_decimal_keys_stay_apart(c: Container, pg_factory: Any) -> None:
    kind, settings = _pg_source(
        pg_factory,
        "CREATE TABLE ck (a text, b numeric(30,0), v text, PRIMARY KEY (a, b))",
        "INSERT INTO ck VALUES ('x', 123456789012345678901234567890, 'p'),"
        " ('x', 123456789012345678901234567891, 'q'), ('X', 1, 'r')",
    )
    ws, run = _load(c, kind, settings, "ck")
    _ok(run)
    assert sorted((r["b"], r["v"]) for r in _api(c, ws, "ck")) == [
        ("1", "r"),
        ("123456789012345678901234567890", "p"),
        ("123456789012345678901234567891", "q"),
    ]


def test_mysql_unsigned_bigint_keys_stay_apart(c: Container, mysql_db: Any) -> None:
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE u (id BIGINT UNSIGNED PRIMARY KEY, v VARCHAR(10))")
        cur.execute(
            "INSERT INTO u VALUES (18446744073709551615, 'max'), (18446744073709551614, 'm1')"
        )
        cur.execute("CREATE TABLE tm (id INT PRIMARY KEY, t TIME(6))")
        cur.execute("INSERT INTO tm VALUES (1, '-838:59:59'), (2, '00:00:00.000001')")
    ws, run = _load(c, "mysql", mysql_db.settings, "u", mysql_db.secrets)
    _ok(run)
    assert sorted((r["id"], r["v"]) for r in _api(c, ws, "u")) == [
        ("18446744073709551614", "m1"),
        ("18446744073709551615", "max"),
    ]
    # A TIME is a duration: stored as whole microseconds on SQLite, delivered as MySQL prints it
    ws, run = _load(c, "mysql", mysql_db.settings, "tm", mysql_db.secrets)
    _ok(run)
    stored = sorted(_stored(c, ws, "tm", "id, t"))
    if _sqlite(c):
        assert stored == [
            (1, "integer", -3_020_399_000_000, "integer"),
            (2, "integer", 1, "integer"),
        ]
    else:
        assert stored == [
            (1, -timedelta(hours=838, minutes=59, seconds=59)),
            (2, timedelta(microseconds=1)),
        ]
    assert _api(c, ws, "tm") == [
        {"id": 1, "t": "-838:59:59.000000"},
        {"id": 2, "t": "00:00:00.000001"},
    ]
    assert _export_jsonl(c, ws, "tm") == [  # it failed: "does not fit duration"
        '{"id":1,"t":"-838:59:59.000000"}',
        '{"id":2,"t":"00:00:00.000001"}',
    ]


def test_floats_nan_and_infinities(c: Container, pg_factory: Any) -> None:
    kind, settings = _pg_source(
        pg_factory,
        "CREATE TABLE flt (id int PRIMARY KEY, f float8)",
        "INSERT INTO flt VALUES (1, 'NaN'), (2, 'Infinity'), (3, '-Infinity'), (4, 0.1)",
        "CREATE TABLE inf (id int PRIMARY KEY, f float8)",
        "INSERT INTO inf VALUES (2, 'Infinity'), (3, '-Infinity'), (4, 0.1)",
    )
    ws, run = _load(c, kind, settings, "flt")
    if _sqlite(c):  # SQLite stores NaN as NULL: the load fails rather than lose it
        assert run.status.value == "FAILED"
        assert "column 'f' holds NaN" in run.error_message
        assert _api(c, ws, "flt") == []
        ws, run = _load(c, kind, settings, "inf")
        _ok(run)
        assert [r["f"] for r in _api(c, ws, "inf")] == ["Infinity", "-Infinity", 0.1]
        return
    _ok(run)
    stored = dict(_stored(c, ws, "flt", "id, f"))
    assert math.isnan(stored[1]) and stored[2] == math.inf and stored[3] == -math.inf
    assert [r["f"] for r in _api(c, ws, "flt")] == ["NaN", "Infinity", "-Infinity", 0.1]


def test_timestamptz_time_and_lists(c: Container, pg_factory: Any) -> None:
    kind, settings = _pg_source(
        pg_factory,
        "CREATE TABLE v (id int PRIMARY KEY, tz timestamptz, t time, li int8[], lf float8[],"
        " lb bytea[], lt timestamptz[], ln numeric[])",
        "INSERT INTO v VALUES (1, '2026-05-28 14:00:00+05:30', '23:59:59.999999',"
        " '{1,9223372036854775807,null}', '{NaN,Infinity,0.1}', '{\"\\\\x00ff\"}',"
        " '{\"2026-01-01 00:00:00.5+00\"}', '{1.10}'),"
        " (2, NULL, '00:00:00', '{}', NULL, '{}', '{}', '{}')",
    )
    ws, run = _load(c, kind, settings, "v")
    _ok(run)
    stored = sorted(_stored(c, ws, "v", "id, tz, t, li, lf, lb, lt, ln"))
    lists = [
        "[1,9223372036854775807,null]",
        '["NaN","Infinity",0.1]',
        '["AP8="]',
        '["2026-01-01T00:00:00.500000Z"]',
        '["1.10"]',
    ]
    if _sqlite(c):
        assert stored[0][2] == "2026-05-28 08:30:00.000000+00:00"
        assert stored[0][4] == "23:59:59.999999"
        assert list(stored[0][6::2]) == lists
    else:
        assert list(stored[0][3:]) == lists
    names = ["li", "lf", "lb", "lt", "ln"]
    empty = {"li": "[]", "lf": None, "lb": "[]", "lt": "[]", "ln": "[]"}
    assert _api(c, ws, "v") == [
        {"id": 1, "tz": "2026-05-28T08:30:00Z", "t": "23:59:59.999999"}
        | dict(zip(names, lists, strict=True)),
        {"id": 2, "tz": None, "t": "00:00:00"} | empty,
    ]
    # Exported (JSONL), the lists are arrays again, each element as the source held it: they
    # failed on both warehouses ("array_ndims(text) does not exist", "does not fit list<…>").
    assert _export_jsonl(c, ws, "v") == [
        '{"id":1,"tz":"2026-05-28T08:30:00.000000Z","t":"23:59:59.999999",'
        '"li":[1,9223372036854775807,null],"lf":["NaN","Infinity",0.1],"lb":["AP8="],'
        '"lt":["2026-01-01T00:00:00.500000Z"],"ln":["1.10"]}',
        '{"id":2,"tz":null,"t":"00:00:00.000000","li":[],"lf":null,"lb":[],"lt":[],"ln":[]}',
    ]


def _export_jsonl(c: Container, ws: str, table: str) -> list[str]:
    """The data table's lines through one bulk export job."""
    who = Principal(ws, "editor", Subject("user", "id-ann", "ann"))
    job = c.services.exports.export(who, ws, f"{table}_copy", None, "jsonl", None)
    assert c.worker().run_once()
    done = c.services.exports.get(who, job.request_id, "http://egress.test/")
    assert done.status.value == "Completed", done.error
    file = c.services.exports.file(done.file_url.rsplit("/", 1)[-1])
    return b"".join(c.storage.stream(file.storage_key)).decode().splitlines()


def test_an_old_sqlite_table_holding_decimals_as_floats_is_not_loaded(
    tmp_path: Path, pg_factory: Any
) -> None:
    settings_ = make_settings(tmp_path)
    settings_.ensure_data_dir()
    migrate(settings_.resolved_database_url)
    c = Container.build(settings_)
    kind, settings = _pg_source(
        pg_factory,
        "CREATE TABLE d (id int PRIMARY KEY, n numeric(20,0))",
        "INSERT INTO d VALUES (1, 18446744073709551615)",
    )
    ws, cfg = _configure(c, kind, settings, "d")
    _ok(_run(c, ws, cfg))
    physical = _record(c, ws, "d").physical_name
    with c.warehouse.engine.begin() as conn:  # as an earlier release made it
        conn.exec_driver_sql(f'DROP TABLE "{physical}"')
        conn.exec_driver_sql(
            f'CREATE TABLE "{physical}" (id INTEGER PRIMARY KEY, n NUMERIC(20, 0))'
        )
    run = _run(c, ws, cfg)
    assert run.status.value == "FAILED"
    assert "column 'n' (decimal(20,0))" in run.error_message
    assert "load into a new data table" in run.error_message


def test_plain_renders_what_json_lacks() -> None:
    assert [plain(v) for v in (math.nan, math.inf, -math.inf, 0.5)] == [
        "NaN",
        "Infinity",
        "-Infinity",
        0.5,
    ]
    assert plain(Decimal("1E-10")) == "0.0000000001"
    assert plain(b"\x00\xff") == "AP8="
    assert plain(timedelta(days=1, seconds=3, microseconds=500000)) == "24:00:03.500000"
    assert plain(-timedelta(microseconds=1)) == "-00:00:00.000001"
