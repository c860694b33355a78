"""A MySQL run reads its rows through libmysqlclient (mysql-connector-python's C extension:
raw rows, one Arrow cast per column) and everything else through PyMySQL (issue 19). Both
drivers give the same batches, value for value, and the same errors; a read blocked in
libmysqlclient still ends when the run is interrupted."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from egress.domain.catalog import TableRef
from egress.domain.plan import ReadPlan
from egress.sources import SourceError
from egress.sources.mysql import MysqlSettings, MysqlSource, fetch_native, raw
from tests.conftest import MysqlDatabase
from tests.support.policy import policy_for

TABLE = """CREATE TABLE kinds (
    id BIGINT PRIMARY KEY, b TINYINT(1), ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT,
    i INT, ui INT UNSIGNED, ub BIGINT UNSIGNED, y YEAR, f FLOAT, d DOUBLE, n DECIMAL(12,2),
    wide DECIMAL(65,30), s VARCHAR(50), tx LONGTEXT, e ENUM('a','b'), st SET('x','y'),
    dt DATE, tm TIME(6), ts DATETIME(6), tz TIMESTAMP(6) NULL, bl BLOB, vb VARBINARY(8),
    bt BIT(1), b10 BIT(10), j JSON, g GEOMETRY)"""
ROWS = [
    "(1, 1, -128, 65535, -8388608, -5, 4000000000, 18446744073709551615, 2026, 0.1,"
    " -2.25e100, -1234567890.12, '-0.000000000000000000000000000001',"
    " 'a\\tb \"q\" \\'s\\' \\\\ ünïcødé \U0001f600', '', 'b', 'x,y', '1000-01-01',"
    " '-838:59:59', '2026-05-28 14:00:00.5', '2026-05-28 18:00:00', X'0001FF', X'1F1E',"
    " b'1', b'1000000001', '{\"a\": [1, 2.5]}', ST_GeomFromText('POINT(1 2)'))",
    "(2, 0, 127, 0, 8388607, 2147483647, 0, 0, 1901, -0.0, 5e-324, 0, 0, '\\n', 'x', 'a',"
    " '', '0000-00-00', '00:00:00.000001', '0000-00-00 00:00:00', NULL, '', '', b'0',"
    " b'0', '[]', NULL)",
    "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    " NULL, NULL, NULL, '2026-02-30', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
]


def _source(db: MysqlDatabase, tmp_path: Path, **settings: Any) -> MysqlSource:
    merged = MysqlSettings.model_validate({**db.settings, **settings})
    return MysqlSource(merged, db.secrets, policy_for(tmp_path))


def _plan(source: MysqlSource, db: MysqlDatabase, name: str) -> ReadPlan:
    columns = next(t.columns for t in source.catalog() if t.name == name)
    return ReadPlan(TableRef(db.name, name), columns)


def _read_both(
    db: MysqlDatabase, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch, **settings: Any
) -> tuple[pa.Table | str, pa.Table | str]:
    """The table read through libmysqlclient, then through PyMySQL (or each one's error)."""
    streams = []
    stream = raw.RawSession.stream

    def counted(self: raw.RawSession, *args: Any) -> Any:
        streams.append(1)
        return stream(self, *args)

    monkeypatch.setattr(raw.RawSession, "stream", counted)
    results: list[pa.Table | str] = []
    for available in (True, False):
        monkeypatch.setattr(raw, "AVAILABLE", available)
        source = _source(db, tmp_path, **settings)
        plan = _plan(source, db, name)
        try:
            results.append(pa.Table.from_batches(list(source.read(plan, 2, 1 << 20))))
        except SourceError as exc:
            results.append(str(exc))
    assert streams == [1]  # the first read went through libmysqlclient, the second did not
    return results[0], results[1]


def test_both_drivers_read_every_type_alike(
    mysql_db: MysqlDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert raw.AVAILABLE, "libmysqlclient did not load: egress/__init__ must load it first"
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute(TABLE)
        cur.execute("SET SESSION sql_mode = ''")  # lets zero and invalid dates in
        cur.execute("SET time_zone = '+02:00'")
        cur.execute("INSERT INTO kinds VALUES " + ", ".join(ROWS))
    fast, pymysql_read = _read_both(mysql_db, tmp_path, "kinds", monkeypatch)
    assert isinstance(fast, pa.Table) and isinstance(pymysql_read, pa.Table)
    assert fast.schema == pymysql_read.schema
    assert fast.to_pylist() == pymysql_read.to_pylist()
    one, two, three = fast.to_pylist()
    assert (one["f"], one["ub"]) == (pa.scalar(0.1, pa.float32()).as_py(), 18446744073709551615)
    assert one["s"] == "a\tb \"q\" 's' \\ ünïcødé \U0001f600"
    assert (one["bt"], one["b10"], one["vb"]) == (True, 513, b"\x1f\x1e")
    assert (two["dt"], two["ts"], three["dt"]) == (None, None, None)  # zeroDates "null"
    assert all(v is None for k, v in three.items() if k not in ("id",))


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({}, "column 'b' is TINYINT(1), read as boolean, but holds 2"),
        ({"zeroDates": "fail"}, "column 'dt' holds the zero or invalid date '0000-00-00'"),
    ],
)
def test_both_drivers_fail_alike(
    mysql_db: MysqlDatabase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings: dict[str, Any],
    error: str,
) -> None:
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute("CREATE TABLE odd (id INT PRIMARY KEY, b TINYINT(1), dt DATE)")
        cur.execute("INSERT INTO odd VALUES (1, 0, '2026-01-01'), (2, 1, '0000-00-00')")
        if not settings:
            cur.execute("UPDATE odd SET b = 2, dt = '2026-01-02' WHERE id = 2")
    fast, pymysql_read = _read_both(mysql_db, tmp_path, "odd", monkeypatch, **settings)
    assert fast == pymysql_read
    assert isinstance(fast, str) and fast.startswith(error)


def test_a_blocked_read_ends_on_interrupt_when_its_socket_is_not_found(
    mysql_db: MysqlDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind a proxy the server reports another client address: the source then asks the
    server to kill the statement instead of shutting the socket down."""
    monkeypatch.setattr(raw, "_own_socket", lambda *args: None)
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE hang (id INT PRIMARY KEY)")
        cur.execute("INSERT INTO hang VALUES (1)")
    source = _source(mysql_db, tmp_path)
    plan = _plan(source, mysql_db, "hang")
    locker = mysql_db.connect()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            list(source.read(plan, 10))
        except BaseException as exc:
            errors.append(exc)

    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLES hang WRITE")
        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not _waiting(locker, mysql_db.name):
            assert time.monotonic() < deadline, "the read never waited on the lock"
            time.sleep(0.02)
        source.interrupt()
        thread.join(10)
        assert not thread.is_alive(), "the read did not end after interrupt()"
        assert len(errors) == 1 and "interrupted" in str(errors[0]).lower(), errors
    finally:
        with locker.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        locker.close()


def _waiting(conn: Any, database: str) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM information_schema.PROCESSLIST"
            " WHERE DB = %s AND STATE LIKE 'Waiting%%'",
            (database,),
        )
        row = cur.fetchone()
    return bool(row and row[0])


def test_rows_read_in_c_are_the_rows_read_in_python(
    mysql_db: MysqlDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libmysqlclient's rows copied into Arrow's buffers in C (``fetch_rows.c``) against one
    call a row in Python: values bigger than a column's first buffer (64 KiB) alone and after
    other rows, NULL and empty values, many batches by rows and by bytes."""
    assert fetch_native.NATIVE is not None, "the C part was not built (make install)"
    sizes = [0, 10, 100_000, 3, 300_000, 70_000, 1]
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE sizes (id INT PRIMARY KEY, t LONGTEXT, b LONGBLOB, n INT)")
        cur.executemany(
            "INSERT INTO sizes VALUES (%s, %s, %s, %s)",
            [
                (
                    i,
                    None if i % 11 == 0 else "é" * sizes[i % len(sizes)],
                    None if i % 13 == 0 else bytes([i % 256]) * sizes[(i + 3) % len(sizes)],
                    None if i % 5 == 0 else i,
                )
                for i in range(1, 401)
            ],
        )
    source = _source(mysql_db, tmp_path)
    plan = _plan(source, mysql_db, "sizes")
    batches = fetch_native.batches_of
    calls: list[int] = []

    def counted(*args: Any) -> Any:
        calls.append(1)
        return batches(*args)

    monkeypatch.setattr(fetch_native, "batches_of", counted)
    in_c = pa.Table.from_batches(list(source.read(plan, 64, 1 << 20)))
    assert calls == [1]
    monkeypatch.setattr(fetch_native, "NATIVE", None)
    in_python = pa.Table.from_batches(list(source.read(plan, 64, 1 << 20)))
    assert calls == [1]
    assert in_c.num_rows == 400 and in_c.to_pylist() == in_python.to_pylist()


def test_the_c_reader_checks_the_connection_first(
    mysql_db: MysqlDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe statement checks libmysqlclient's field layout once a process: a failed probe
    (the session's fault) is asked again; a layout that does not check out reads in Python."""
    source = _source(mysql_db, tmp_path)
    monkeypatch.setattr(fetch_native, "_checks", [])
    monkeypatch.setattr(fetch_native, "_PROBE", b"SELECT * FROM no_such_table")
    session = source._raw_session()
    try:
        assert fetch_native.handle(session._conn) is None and fetch_native._checks == []
        monkeypatch.setattr(fetch_native, "_PROBE", b"SELECT 1 AS egress_probe")
        assert fetch_native.handle(session._conn) is not None and fetch_native._checks == [True]
    finally:
        session.close()
    monkeypatch.setattr(fetch_native, "_checks", [False])

    def not_in_c(*args: Any) -> Any:
        raise AssertionError("read in C although the layout did not check out")

    monkeypatch.setattr(fetch_native, "batches_of", not_in_c)
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE few (id INT PRIMARY KEY, s TEXT)")
        cur.execute("INSERT INTO few VALUES (1, 'a'), (2, NULL)")
    read = pa.Table.from_batches(list(source.read(_plan(source, mysql_db, "few"), 10)))
    assert read.to_pylist() == [{"id": 1, "s": "a"}, {"id": 2, "s": None}]
