"""Floats on the CSV COPY path: PostgreSQL writes its shortest text (``1e-05``, ``NaN``), the C
loop lays each value out as Arrow's CSV writer does (``0.00001``, ``nan``) — the Arrow path's
bytes, value for value, for random doubles and singles, their edges, and rows longer than a
block. Where the C loop was not built, floats keep the Arrow path."""

from __future__ import annotations

import io
import math
import random
import struct
from pathlib import Path

import pytest

from egress.container import Container
from egress.domain.catalog import TableRef
from egress.domain.paging import PageRequest
from egress.domain.plan import ReadPlan
from egress.sinks.file import FileSink
from egress.sources.arrow_types import arrow_schema
from egress.sources.base import Rendering
from egress.sources.postgresql import (
    PostgresSettings,
    PostgresSource,
    copy_native,
    copy_out,
    copy_split,
)
from egress.sources.postgresql import source as postgres_source
from tests.conftest import PgDatabase, make_settings
from tests.integration.test_split_copy import _parts as split_parts
from tests.integration.test_split_copy import copy_splits
from tests.support.migrated import migrate

EDGES = [
    0.0, -0.0, 1.0, -1.5, 0.1, 1e-5, 1e-6, 1e-7, 2.5e-6, 9.999999e-7, 123456789.0, 999999999.5,
    1e9, 1e10, 12345678901.0, 1e15, 1e16, 1e21, 1.5e300, 5e-324, 2.2250738585072014e-308,
    1.7976931348623157e308, 2.2357217958216088e16, 0.000123, 1234567890123456789.0, math.nan,
    math.inf, -math.inf,
]  # fmt: skip
# A split's keys: quoted (a comma, the empty text), plain, NULL.
SPLIT_KEYS = ["a,b", "k1", "", None]
# Singles: edges PostgreSQL's real can hold (no subnormals through float8, no overflow).
SINGLE_EDGES = [v for v in EDGES if not math.isfinite(v) or v == 0 or 1.2e-38 < abs(v) < 3.4e38]


def _doubles(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    values = []
    for i in range(n):
        if i % 3 == 0:  # any bit pattern: subnormals, huge, NaN payloads
            values.append(struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0])
        elif i % 3 == 1:  # around the fixed / exponent switch of both layouts
            values.append(rng.uniform(-1, 1) * 10 ** rng.randint(-9, 18))
        else:  # a few decimals, as prices and measurements are
            values.append(round(rng.uniform(-1e6, 1e6), rng.randint(0, 6)))
    return values


@pytest.fixture
def c(tmp_path: Path) -> Container:
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    return Container.build(settings)


@pytest.fixture
def floats(pg_db: PgDatabase) -> PgDatabase:
    doubles = EDGES + _doubles(6000, 19)
    singles = SINGLE_EDGES + [
        v for v in _doubles(6000, 23) if not math.isfinite(v) or 1.2e-38 < abs(v) < 3.4e38
    ]
    with pg_db.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE floats (id int PRIMARY KEY, d float8, r real, note text, k text)")
        cur.executemany(
            "INSERT INTO floats VALUES (%s, %s, %s::float8::real, %s, %s)",
            [
                (
                    i,
                    doubles[i] if i < len(doubles) else None,
                    singles[i] if i < len(singles) else None,
                    "x" * 10000 if i % 500 == 0 else "n",  # rows longer than a small buffer
                    SPLIT_KEYS[i % len(SPLIT_KEYS)],
                )
                for i in range(max(len(doubles), len(singles)))
            ],
        )
    return pg_db


def _source_and_plan(c: Container, floats: PgDatabase) -> tuple[PostgresSource, ReadPlan]:
    settings = {"host": "127.0.0.1", "port": 5432, "database": floats.name, "user": "postgres"}
    source = PostgresSource(PostgresSettings(**settings), {}, c.policy)
    fields = next(t for t in source.catalog() if t.name == "floats").columns
    return source, ReadPlan(TableRef("public", "floats"), fields, fields)


def _render(
    c: Container,
    source: PostgresSource,
    plan: ReadPlan,
    fast: bool,
    rendering: Rendering = Rendering.CSV,
) -> bytes:
    if fast:
        out = io.BytesIO()
        source.copy_rows(plan, out, lambda n: None, rendering)
        return out.getvalue()
    fmt = str(rendering)
    key = f"cmp/arrow.{fmt}"
    sink = FileSink(c.storage, key, fmt, "none", arrow_schema(plan.fields), 1 << 20, "x")
    for batch in source.read(plan, 1000):
        sink.write(batch)
    sink.close()
    return b"".join(c.storage.stream(key))


@pytest.mark.parametrize("block_bytes", [copy_out.BLOCK_BYTES, 4096])
@pytest.mark.parametrize(
    ("rendering", "marks"),
    [
        # Arrow's layout: fixed notation from 1e-6 to 1e10, no ".0".
        (Rendering.CSV, [b"0.00001", b"nan", b"2.235721795821609e+16"]),
        # Python's: fixed from 1e-4 to 1e16, ".0" on a whole number, words as strings.
        # A single (r) as the double it widens to.
        (
            Rendering.JSONL,
            [b'"d":1e-05,', b'"d":"NaN",', b'"d":-0.0,', b'"d":123456789.0,', b'"r":0.10000000149'],
        ),
    ],
)
def test_floats_on_the_copy_path_are_the_arrow_paths_bytes(
    c: Container,
    floats: PgDatabase,
    monkeypatch: pytest.MonkeyPatch,
    block_bytes: int,
    rendering: Rendering,
    marks: list[bytes],
) -> None:
    monkeypatch.setattr(copy_out, "BLOCK_BYTES", block_bytes)
    source, plan = _source_and_plan(c, floats)
    assert source.can_copy(plan, rendering)
    fast = _render(c, source, plan, True, rendering)
    arrow = _render(c, source, plan, False, rendering)
    assert fast.count(b"\n") == arrow.count(b"\n") > 6000
    for mark in marks:
        assert mark in fast, mark
    assert fast == arrow
    source.close()


def test_without_the_c_loop_floats_keep_the_arrow_path(
    c: Container, floats: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(copy_native, "NATIVE", None)
    source, plan = _source_and_plan(c, floats)
    assert not source.can_copy(plan, Rendering.CSV)
    assert not source.can_copy(plan, Rendering.JSONL)
    ints = [f for f in plan.fields if f.name in ("id", "note")]
    assert source.can_copy(ReadPlan(TableRef("public", "floats"), ints, ints), Rendering.CSV)
    source.close()


def test_a_server_older_than_12_keeps_floats_on_the_arrow_path(
    c: Container, floats: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before PostgreSQL 12, extra_float_digits = 1 meant 16 significant digits, not the
    # shortest text that reads back as the value: nothing for the C loop to lay out.
    monkeypatch.setattr(postgres_source, "SHORTEST_FLOATS_SINCE", 10**7)
    source, plan = _source_and_plan(c, floats)
    assert not source.can_copy(plan, Rendering.CSV)
    source.close()


@pytest.mark.parametrize(
    "fields",
    [
        None,  # the key is a field of the row, after the floats
        ["id", "note", "r", "d"],  # the key left out of the files: a leading field, cut off
    ],
)
def test_a_split_with_floats_copies_the_arrow_paths_parts(
    c: Container, floats: PgDatabase, monkeypatch: pytest.MonkeyPatch, fields: list[str] | None
) -> None:
    """Blocks of 2 KiB (rows of 10 KB are handed over alone, their floats re-laid out in
    Python): every part the Arrow path's, byte for byte."""
    monkeypatch.setattr(copy_split, "BLOCK_BYTES", 2048)
    ws = c.workspaces.ensure_workspace("t")
    settings = {"host": "127.0.0.1", "port": 5432, "database": floats.name, "user": "postgres"}
    conn = c.connections.create(ws, "pg", "postgresql", settings, None)
    c.services.catalog.discover(ws, conn.id)
    page = c.templates.list_page(ws, conn.id, PageRequest(0, 100))
    tpl = next(t.id for t in page.items if t.name.endswith("floats"))
    copied = copy_splits(monkeypatch)
    by_copy = split_parts(c, ws, tpl, "k", fields, "by_copy")
    assert copied == ["k"]
    monkeypatch.setattr(PostgresSource, "can_copy_csv_split", lambda *_: False)
    assert by_copy == split_parts(c, ws, tpl, "k", fields, "by_arrow")
    assert {p[0] for p in by_copy.values()} == set(SPLIT_KEYS)
    assert any(b"2.235721795821609e+16" in p[3] for p in by_copy.values())
