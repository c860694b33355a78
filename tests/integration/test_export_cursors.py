"""Export and rows-API cursors keep each key value with its type: a chain over binary, timestamp,
date or decimal keys delivers every row exactly once, on every source and both warehouses; a
source whose stored values do not order as their type fails loudly instead of repeating rows;
an old cursor whose key text was not exact is a 400."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from itertools import count
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from egress.container import Container
from egress.db.tables import templates
from egress.domain.errors import BadRequest, Invalid
from egress.domain.export import RequestStatus, encode_cursor
from egress.domain.identity import Principal, Subject
from egress.domain.paging import KeysetCursor, PageRequest
from egress.services.data_tables import ROWS_CURSOR
from egress.services.exports import CURSOR_PURPOSE, RequestView
from tests.conftest import PgDatabase, make_settings
from tests.support.factories import submitted_configuration
from tests.support.migrated import migrate

_n = count()


def _container(tmp_path: Path, warehouse_url: str | None = None, limit: int = 2) -> Container:
    s = make_settings(
        tmp_path,
        heartbeat_s=0.1,
        poll_s=0.05,
        export_job_limit=limit,
        warehouse_url=warehouse_url,
    )
    s.ensure_data_dir()
    migrate(s.resolved_database_url)
    return Container.build(s)


def _user(ws: str) -> Principal:
    return Principal(ws, "editor", Subject("user", "id-ann", "ann"))


def _template(c: Container, ws: str, kind: str, settings: dict[str, Any], table: str) -> str:
    secrets = settings.pop("_secrets", None)
    sealed = c.secret_box.seal(secrets) if secrets else None
    conn = c.connections.create(ws, f"src-{next(_n)}", kind, settings, sealed)
    c.services.catalog.discover(ws, conn.id)
    items = c.templates.list_page(ws, conn.id, PageRequest(0, 100)).items
    tpl = next(t for t in items if t.name == table or t.name.endswith("." + table))
    return tpl.id


def _chain(c: Container, ws: str, obj: str, fmt: str = "jsonl") -> list[list[str]]:
    """Every job's ``v`` values, following nextCursor until it is null (at most 20 jobs)."""
    p = _user(ws)
    jobs: list[list[str]] = []
    cursor = None
    for _ in range(20):
        done = _job(c, p, obj, cursor, fmt)
        assert done.status is RequestStatus.COMPLETED, done
        record = c.services.exports.file(done.file_url.rsplit("/", 1)[-1])  # type: ignore[union-attr]
        jobs.append(_values(b"".join(c.storage.stream(record.storage_key)), fmt))
        cursor = done.next_cursor
        if cursor is None:
            return jobs
    raise AssertionError(f"the chain never ended: {jobs}")


def _job(c: Container, p: Principal, obj: str, cursor: str | None, fmt: str) -> RequestView:
    view = c.services.exports.export(p, p.workspace_id, obj, cursor, fmt, None)
    assert c.worker().run_once()
    return c.services.exports.get(p, view.request_id, "http://egress.test/")


def _values(data: bytes, fmt: str) -> list[str]:
    """The ``v`` column of an export file."""
    if fmt == "jsonl":
        return [json.loads(line)["v"] for line in data.decode().splitlines()]
    if fmt == "csv":
        return [row["v"] for row in csv.DictReader(io.StringIO(data.decode(), newline=""))]
    return [str(v) for v in pq.read_table(io.BytesIO(data)).column("v").to_pylist()]


def _pg(db: PgDatabase, *statements: str) -> dict[str, Any]:
    with db.connect() as conn:
        for sql in statements:
            conn.execute(sql)
    return {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"}


def test_mysql_varbinary_keys_are_exported_each_once(tmp_path: Path, mysql_db: Any) -> None:
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE bk (id VARBINARY(4) PRIMARY KEY, v VARCHAR(10))")
        cur.execute(
            "INSERT INTO bk VALUES (x'00','a'),(x'0000','b'),(x'01','c'),(x'41','d'),"
            "(x'61','e'),(x'ff','f')"
        )
    c = _container(tmp_path)
    ws = c.workspaces.ensure_workspace("firm")
    settings = {**mysql_db.settings, "_secrets": mysql_db.secrets}
    tpl = _template(c, ws, "mysql", settings, "bk")
    assert _chain(c, ws, f"t-{tpl}") == [["a", "b"], ["c", "d"], ["e", "f"]]


def test_postgresql_bytea_and_timestamp_keys_are_exported_each_once(
    tmp_path: Path, pg_factory: Any
) -> None:
    settings = _pg(
        pg_factory(),
        "CREATE TABLE bk (id bytea PRIMARY KEY, v text)",
        "INSERT INTO bk VALUES ('\\x00','a'),('\\x0000','b'),('\\xff','c')",
        "CREATE TABLE tz (id timestamptz PRIMARY KEY, v text)",
        "INSERT INTO tz VALUES ('2026-01-01 00:00:00+00','a'),('2026-01-01 00:00:01+00','b'),"
        "('2026-01-01 00:00:01.5+00','c')",
    )
    c = _container(tmp_path, limit=1)
    ws = c.workspaces.ensure_workspace("firm")
    for table in ("bk", "tz"):
        tpl = _template(c, ws, "postgresql", dict(settings), table)
        assert _chain(c, ws, f"t-{tpl}") == [["a"], ["b"], ["c"]], table


def test_sqlite_blob_keys_are_exported_each_once(tmp_path: Path) -> None:
    src = tmp_path / "sources" / "s.db"
    src.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(src) as db:
        db.execute("CREATE TABLE bk (id BLOB PRIMARY KEY, v TEXT)")
        db.executemany(
            "INSERT INTO bk VALUES (?,?)", [(b"\x00", "a"), (b"\x00\x00", "b"), (b"\xff", "c")]
        )
    c = _container(tmp_path, limit=1)
    ws = c.workspaces.ensure_workspace("firm")
    tpl = _template(c, ws, "sqlite", {"path": str(src)}, "bk")
    assert _chain(c, ws, f"t-{tpl}") == [["a"], ["b"], ["c"]]


KEYS = {
    "ts": (
        "CREATE TABLE ts (id timestamp PRIMARY KEY, v text)",
        "INSERT INTO ts VALUES ('2026-01-01 00:00:00','a'),('2026-01-01 00:00:01','b'),"
        "('2026-01-01 00:00:01.5','c'),('2026-01-01 00:00:02','d'),('2026-01-01 00:00:03','e')",
    ),
    "tz": (
        "CREATE TABLE tz (id timestamptz PRIMARY KEY, v text)",
        "INSERT INTO tz VALUES ('2026-01-01 00:00:00+00','a'),('2026-01-01 00:00:01+00','b'),"
        "('2026-01-01 00:00:01.5+00','c'),('2026-01-01 00:00:02+00','d'),"
        "('2026-01-01 00:00:03+00','e')",
    ),
    "dk": (
        "CREATE TABLE dk (id date PRIMARY KEY, v text)",
        "INSERT INTO dk VALUES ('2026-01-01','a'),('2026-01-02','b'),('2026-01-03','c'),"
        "('2026-01-04','d'),('2026-01-05','e')",
    ),
    "nk": (
        "CREATE TABLE nk (id numeric(30,10) PRIMARY KEY, v text)",
        "INSERT INTO nk VALUES (1,'a'),(1.0000000001,'b'),(2.5,'c'),(12345678901234567.1,'d'),"
        "(12345678901234567.2,'e')",
    ),
    "bk": (
        "CREATE TABLE bk (id bytea PRIMARY KEY, v text)",
        "INSERT INTO bk VALUES ('\\x00','a'),('\\x0000','b'),('\\x01','c'),('\\x41','d'),"
        "('\\xff','e')",
    ),
}


def _data_table(c: Container, ws: str, settings: dict[str, Any], table: str) -> str:
    tpl = _template(c, ws, "postgresql", dict(settings), table)
    destination = {"type": "dataTable", "dataTable": f"{table}_copy", "mode": "upsert"}
    cfg = submitted_configuration(c, ws, tpl, f"load_{table}", destination=destination)
    c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    return f"{table}_copy"


@pytest.mark.parametrize("warehouse", ["sqlite", "postgresql"])
def test_data_table_keys_page_each_row_once_in_exports_and_the_rows_api(
    tmp_path: Path, pg_factory: Any, warehouse: str
) -> None:
    url = None if warehouse == "sqlite" else pg_factory("egress_wh").sqlalchemy_url
    settings = _pg(pg_factory(), *[sql for pair in KEYS.values() for sql in pair])
    c = _container(tmp_path, url)
    ws = c.workspaces.ensure_workspace("firm")
    for table in KEYS:
        name = _data_table(c, ws, settings, table)
        # A SQLite warehouse keeps decimals as their exact text and orders them as text.
        text_order = warehouse == "sqlite" and table == "nk"
        expected = (
            [["a", "b"], ["d", "e"], ["c"]] if text_order else [["a", "b"], ["c", "d"], ["e"]]
        )
        assert _chain(c, ws, name) == expected, table
        rec = next(
            t for t in c.data_tables.list_page(ws, PageRequest(0, 100)).items if t.name == name
        )
        pages, cursor = [], None
        for _ in range(10):
            page = c.services.data_tables.rows_page(ws, rec.id, 2, cursor)
            pages.append([r["v"] for r in page.rows])
            cursor = page.next_cursor
            if cursor is None:
                break
        assert pages == expected, table


def test_an_old_cursor_with_str_bytes_is_a_400_and_an_old_timestamp_one_still_pages(
    tmp_path: Path, pg_factory: Any
) -> None:
    settings = _pg(pg_factory(), *KEYS["bk"], *KEYS["ts"])
    c = _container(tmp_path)
    ws = c.workspaces.ensure_workspace("firm")
    p = _user(ws)
    signer = c.signing.signer(CURSOR_PURPOSE)
    bk = f"t-{_template(c, ws, 'postgresql', dict(settings), 'bk')}"
    old = signer.sign(json.dumps({"table": f"{ws}/{bk}", "after": ["b'\\x00'"]}).encode())
    with pytest.raises(BadRequest) as caught:
        c.services.exports.export(p, ws, bk, old, "jsonl", None)
    assert caught.value.errors[0].loc == ("body", "cursor")
    assert caught.value.errors[0].msg == (
        "was returned by an older release that did not keep this object's key exactly; "
        "start the chain again without a cursor"
    )
    # An older release's str(datetime) was exact: it pages on from there.
    ts = f"t-{_template(c, ws, 'postgresql', dict(settings), 'ts')}"
    old = signer.sign(encode_cursor(ws, ts, ["2026-01-01 00:00:01"]))
    view = c.services.exports.export(p, ws, ts, old, "jsonl", None)
    assert c.worker().run_once()
    done = c.services.exports.get(p, view.request_id, "http://egress.test/")
    record = c.services.exports.file(done.file_url.rsplit("/", 1)[-1])  # type: ignore[union-attr]
    text = b"".join(c.storage.stream(record.storage_key)).decode()
    assert [json.loads(line)["v"] for line in text.splitlines()] == ["c", "d"]
    # The rows API: the same rule.
    name = _data_table(c, ws, settings, "bk")
    rec = next(t for t in c.data_tables.list_page(ws, PageRequest(0, 100)).items if t.name == name)
    raw = json.dumps({"table": rec.id, "after": ["b'\\x00'"]}).encode()
    with pytest.raises(BadRequest) as caught:
        c.services.data_tables.rows_page(ws, rec.id, 2, c.signing.signer(ROWS_CURSOR).sign(raw))
    assert caught.value.errors[0].loc == ("query", "cursor")
    assert (
        KeysetCursor(rec.id, [b"\x00"]).to_json()
        == f'{{"table": "{rec.id}", "after": ["00"]}}'.encode()
    )


def test_a_postgresql_warehouse_table_never_loaded_exports_empty(
    tmp_path: Path, pg_factory: Any
) -> None:
    c = _container(tmp_path, pg_factory("egress_wh").sqlalchemy_url)
    ws = c.workspaces.ensure_workspace("firm")
    settings = _pg(
        pg_factory(),
        "CREATE TABLE far (id int PRIMARY KEY, d date)",
        "INSERT INTO far VALUES (1, '10000-01-01')",
    )
    tpl = _template(c, ws, "postgresql", dict(settings), "far")
    destination = {"type": "dataTable", "dataTable": "far_copy", "mode": "upsert"}
    cfg = submitted_configuration(c, ws, tpl, "load_far", destination=destination)
    c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()  # fails: a year a data table cannot hold
    assert [t.name for t in c.data_tables.list_page(ws, PageRequest(0, 100)).items] == ["far_copy"]
    assert _chain(c, ws, "far_copy") == [[]]


def test_postgresql_real_keys_are_exported_each_once(tmp_path: Path, pg_factory: Any) -> None:
    """A real key's last value is its stored single, not the double of its shortest text:
    the next job's ``k > 0.3`` took the boundary row (0.30000001192092896) again."""
    settings = _pg(
        pg_factory(),
        "CREATE TABLE r (k real PRIMARY KEY, v text)",
        "INSERT INTO r SELECT g / 10.0, 'r' || g FROM generate_series(1, 7) g",
    )
    c = _container(tmp_path, limit=3)
    ws = c.workspaces.ensure_workspace("firm")
    reals = f"t-{_template(c, ws, 'postgresql', settings, 'r')}"
    for fmt in ("jsonl", "csv", "parquet"):
        expected = [["r1", "r2", "r3"], ["r4", "r5", "r6"], ["r7"]]
        assert _chain(c, ws, reals, fmt) == expected, fmt


def test_postgresql_interval_keys_are_exported_each_once(tmp_path: Path, pg_factory: Any) -> None:
    """An interval key pages on its ISO 8601 text; asking whether rows follow read that text
    back through psycopg, which cannot parse it (the second job failed)."""
    settings = _pg(
        pg_factory(),
        "CREATE TABLE iv (k interval PRIMARY KEY, v text)",
        "INSERT INTO iv VALUES ('-1 hour','a'),('1 microsecond','b'),('1 hour','c'),"
        "('1 day 1 hour','d'),('1 mon','e'),('1 year -2 days','f'),('100 years','g')",
        # With a date in the key, the last key is read by a query before the COPY.
        "CREATE TABLE ivd (k interval, d date, v text, PRIMARY KEY (k, d))",
        "INSERT INTO ivd SELECT k, '2026-01-01', v FROM iv",
    )
    c = _container(tmp_path, limit=3)
    ws = c.workspaces.ensure_workspace("firm")
    for table in ("iv", "ivd"):
        intervals = f"t-{_template(c, ws, 'postgresql', dict(settings), table)}"
        for fmt in ("jsonl", "csv", "parquet"):
            expected = [["a", "b", "c"], ["d", "e", "f"], ["g"]]
            assert _chain(c, ws, intervals, fmt) == expected, (table, fmt)


def _refusal(c: Container, ws: str, obj: str) -> str:
    """Why ``obj`` cannot be exported: it is not offered, and a request is a 422."""
    p = _user(ws)
    assert obj not in {o.name for o in c.services.exports.objects(p, ws)}
    with pytest.raises(Invalid) as refused:
        c.services.exports.export(p, ws, obj, None, "jsonl", None)
    return refused.value.errors[0].msg


def test_postgresql_money_and_array_keys_are_refused(tmp_path: Path, pg_factory: Any) -> None:
    settings = _pg(
        pg_factory(),
        "CREATE TABLE m (k money PRIMARY KEY, v text)",
        "CREATE TABLE a (k int[] PRIMARY KEY, v text)",
        "CREATE TABLE ok (k int PRIMARY KEY, n money, l int[])",
    )
    c = _container(tmp_path)
    ws = c.workspaces.ensure_workspace("firm")
    money, array, ok = (
        f"t-{_template(c, ws, 'postgresql', dict(settings), t)}" for t in ("m", "a", "ok")
    )
    assert _refusal(c, ws, money) == (
        f"{money} cannot be exported: its key column 'k' is PostgreSQL money, which does not "
        "compare with the cursor's decimal: jobs after the first would fail"
    )
    assert _refusal(c, ws, array) == (
        f"{array} cannot be exported: its key column 'k' is an array, whose element type the "
        "cursor does not keep: jobs after the first would fail"
    )
    # Such columns outside the key are no obstacle.
    assert ok in {o.name for o in c.services.exports.objects(_user(ws), ws)}


_ENUM_REFUSAL = (
    "its key column 'k' is a MySQL ENUM, which sorts by its declared position but compares "
    "with the cursor's text as text: jobs after the first would repeat or skip rows"
)


def test_mysql_enum_and_set_keys_are_refused(tmp_path: Path, mysql_db: Any) -> None:
    """MySQL orders an ENUM by its declared position and a SET by its members' bits, but
    compares them with the cursor's text as text: the chain delivered sad, ok, happy, sad, ok,
    zzz and every job Completed."""
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE e (k ENUM('sad','ok','happy','zzz','aaa') PRIMARY KEY, v INT)")
        cur.execute("CREATE TABLE st (k SET('x','a','m') PRIMARY KEY, v INT)")
        cur.execute("CREATE TABLE ok (k VARCHAR(5) PRIMARY KEY, e ENUM('b','a'))")
    c = _container(tmp_path)
    ws = c.workspaces.ensure_workspace("firm")
    settings = {**mysql_db.settings, "_secrets": mysql_db.secrets}
    enum, sets, ok = (
        f"t-{_template(c, ws, 'mysql', dict(settings), t)}" for t in ("e", "st", "ok")
    )
    assert _refusal(c, ws, enum) == f"{enum} cannot be exported: {_ENUM_REFUSAL}"
    assert _refusal(c, ws, sets) == (
        f"{sets} cannot be exported: its key column 'k' is a MySQL SET, which sorts by its "
        "members' bits but compares with the cursor's text as text: jobs after the first "
        "would repeat or skip rows"
    )
    assert ok in {o.name for o in c.services.exports.objects(_user(ws), ws)}


def test_mysql_enum_key_of_an_older_template_fails_the_job(tmp_path: Path, mysql_db: Any) -> None:
    """A template discovered before ENUM columns kept their native type is offered; its job
    fails, naming why, rather than completing and starting a chain that repeats rows."""
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE e (k ENUM('sad','ok','happy','zzz','aaa') PRIMARY KEY, v INT)")
        cur.execute("INSERT INTO e VALUES ('sad',1),('ok',2),('happy',3),('zzz',4),('aaa',5)")
    c = _container(tmp_path, limit=3)
    ws = c.workspaces.ensure_workspace("firm")
    settings = {**mysql_db.settings, "_secrets": mysql_db.secrets}
    tpl = _template(c, ws, "mysql", settings, "e")
    with c.engine.begin() as db:
        fields = db.execute(sa.select(templates.c.fields).where(templates.c.id == tpl)).scalar_one()
        older = [{k: v for k, v in f.items() if k != "native"} for f in fields]
        db.execute(sa.update(templates).where(templates.c.id == tpl).values(fields=older))
    done = _job(c, _user(ws), f"t-{tpl}", None, "jsonl")
    assert done.status is RequestStatus.FAILED, done
    assert done.error == f"this object cannot be exported: {_ENUM_REFUSAL}"
