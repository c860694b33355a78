"""The COPY reader over libpq, in C (``copy_native``) and in Python where that was not built:
the server's rows byte for byte, rows longer than a block, progress from a slow server, its
error when the copy fails at the start or midway, an interrupt midway, and the connection
usable afterwards."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from egress.sources.base import SocketRef
from egress.sources.postgresql import copy_native
from egress.sources.postgresql.copy_out import BLOCK_BYTES, copy_out
from tests.conftest import PgDatabase

ROWS = "COPY (SELECT g, repeat('x', 100) FROM generate_series(1, 30000) g) TO STDOUT"


@pytest.fixture(params=["native", "python"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "python":
        monkeypatch.setattr(copy_native, "NATIVE", None)
    else:
        assert copy_native.NATIVE is not None, "the C loop was not built (make install)"
    yield request.param


def test_copy_out_writes_every_row_and_reports_errors(pg_db: PgDatabase, reader: str) -> None:
    with pg_db.connect() as conn:
        seen: list[int] = []
        out = io.BytesIO()
        # More than one block, so rows are written and reported along the way.
        rows, last = copy_out(conn, ROWS, out, seen.append)
        assert out.tell() > BLOCK_BYTES
        assert rows == 30000 and seen[-1] == 30000 and len(seen) > 1
        assert out.getvalue().splitlines()[-1] == last.rstrip(b"\n") == b"30000\t" + b"x" * 100
        expected = b"".join(b"%d\t%s\n" % (g, b"x" * 100) for g in range(1, 30001))
        assert out.getvalue() == expected
        assert copy_out(conn, "COPY (SELECT 1 WHERE false) TO STDOUT", out, seen.append) == (0, b"")
        for failing in (
            "COPY (SELECT 1/0) TO STDOUT",
            "COPY (SELECT CASE WHEN g = 5000 THEN 1/0 END FROM generate_series(1, 9999) g)"
            " TO STDOUT",
        ):
            with pytest.raises(psycopg.errors.DivisionByZero):
                copy_out(conn, failing, io.BytesIO(), seen.append)
            conn.rollback()
        assert conn.execute("SELECT 42").fetchone() == (42,)


def test_rows_longer_than_a_block_arrive_whole_and_in_order(pg_db: PgDatabase, reader: str) -> None:
    # Rows of 0.3, 1.5 and 3 blocks between short ones: the C loop hands a row that does not
    # fit its buffer back on its own.
    sizes = [10, BLOCK_BYTES * 3 // 10, 10, BLOCK_BYTES * 3 // 2, BLOCK_BYTES * 3, 10]
    values = ", ".join(f"({i}, {n})" for i, n in enumerate(sizes))
    statement = (
        f"COPY (SELECT i, repeat(chr(97 + i), n) FROM (VALUES {values}) v(i, n) ORDER BY i)"
        " TO STDOUT"
    )
    with pg_db.connect() as conn:
        out = io.BytesIO()
        rows, last = copy_out(conn, statement, out, lambda n: None)
    expected = [b"%d\t%s" % (i, bytes([97 + i]) * n) for i, n in enumerate(sizes)]
    assert out.getvalue().splitlines() == expected
    assert (rows, last) == (len(sizes), expected[-1] + b"\n")


def test_a_slow_server_s_rows_are_reported_as_they_come(pg_db: PgDatabase, reader: str) -> None:
    # Rows of 20 kB (each leaves the server's 8 kB send buffer at once) 0.15 s apart: the
    # rows read so far are written and reported every 0.2 s, not only at the end.
    statement = (
        "COPY (SELECT g, repeat('y', 20000), pg_sleep(0.15) FROM generate_series(1, 6) g) TO STDOUT"
    )
    with pg_db.connect() as conn:
        seen: list[tuple[int, int]] = []
        out = io.BytesIO()
        rows, _ = copy_out(conn, statement, out, lambda n: seen.append((n, out.tell())))
    assert rows == 6
    during = [(n, written) for n, written in seen if 0 < n < 6]
    assert during, seen
    assert all(written >= n * 20000 for n, written in during)  # reported rows are written


def test_an_interrupt_midway_ends_the_copy_with_an_error(pg_db: PgDatabase, reader: str) -> None:
    statement = (
        "COPY (SELECT g, repeat('z', 20000), pg_sleep(0.1) FROM generate_series(1, 100) g)"
        " TO STDOUT"
    )
    with pg_db.connect() as conn:
        ref = SocketRef.of(conn.fileno())
        first = threading.Event()
        shut = threading.Timer(5, ref.shutdown)  # not reached when the reports come

        def report(n: int) -> None:
            if n and not first.is_set():
                first.set()
                ref.shutdown()

        started = time.monotonic()
        shut.start()
        try:
            with pytest.raises(psycopg.OperationalError):
                copy_out(conn, statement, io.BytesIO(), report)
        finally:
            shut.cancel()
        assert first.is_set()
        assert time.monotonic() - started < 3  # not the 10 s the whole copy takes
