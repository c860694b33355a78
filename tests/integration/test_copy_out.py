"""The COPY reader over libpq: the server's rows byte for byte, its error when the copy fails
at the start or midway, and the connection usable afterwards."""

from __future__ import annotations

import io

import psycopg
import pytest

from egress.sources.postgresql.copy_out import BLOCK_BYTES, copy_out
from tests.conftest import PgDatabase


def test_copy_out_writes_every_row_and_reports_errors(pg_db: PgDatabase) -> None:
    with pg_db.connect() as conn:
        seen: list[int] = []
        out = io.BytesIO()
        # More than one block, so rows are written and reported along the way.
        rows, last = copy_out(
            conn,
            "COPY (SELECT g, repeat('x', 100) FROM generate_series(1, 30000) g) TO STDOUT",
            out,
            seen.append,
        )
        assert out.tell() > BLOCK_BYTES
        assert rows == 30000 and seen[-1] == 30000 and len(seen) > 1
        assert out.getvalue().splitlines()[-1] == last.rstrip(b"\n") == b"30000\t" + b"x" * 100
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
