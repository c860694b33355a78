"""Upsert keys on both warehouses: a key the source repeats in one load fails the run, leaving
the table as it was; keys equal by value (an unbounded numeric's 1.0 and 1.00) are one key."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest

from egress.container import Container
from egress.domain.paging import PageRequest
from egress.sinks.data_table import _MAYBE_NOT_CANONICAL, canonical_decimal
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


class _Source:
    """A PostgreSQL source database, and an upsert of one of its tables or views (``key``: a
    custom template's declared key) into the data table ``copy``."""

    def __init__(self, c: Container, pg_factory: Any, *statements: str) -> None:
        self.c, self.db = c, pg_factory()
        self.sql(*statements)
        self.ws = c.workspaces.ensure_workspace("firm")
        settings = {"host": "127.0.0.1", "port": 5432, "database": self.db.name}
        self.conn = c.connections.create(
            self.ws, f"src{next(_n)}", "postgresql", settings | {"user": "postgres"}, None
        ).id
        c.services.catalog.discover(self.ws, self.conn)

    def sql(self, *statements: str) -> None:
        with self.db.connect() as conn:
            for s in statements:
                conn.execute(s)

    def upsert(self, table: str, key: list[str] | None = None) -> str:
        c, ws = self.c, self.ws
        if key is None:
            tpl = next(
                t.id
                for t in c.templates.list_page(ws, self.conn, PageRequest(0, 100)).items
                if t.name == table
            )
        else:
            tpl = c.services.catalog.create_custom_template(
                ws, self.conn, f"keyed{next(_n)}", table, None, key, None, None
            ).id
        dest = {"type": "dataTable", "dataTable": "copy", "mode": "upsert"}
        return submitted_configuration(c, ws, tpl, f"load_{next(_n)}", destination=dest)

    def run(self, cfg: str) -> Any:
        execution, _ = self.c.services.executions.trigger(self.ws, cfg, {})
        assert self.c.worker().run_once()
        return self.c.executions.get(self.ws, cfg, execution.id).latest

    def stored(self, columns: str) -> list[tuple[Any, ...]]:
        """The warehouse table's rows, each value as the text the warehouse holds."""
        table = self.c.data_tables.find(self.ws, "copy")
        assert table is not None
        text = "::text" if not _sqlite(self.c) else ""
        cols = ", ".join(f'"{n}"{text}' for n in columns.split(", "))
        with self.c.warehouse.engine.connect() as conn:
            got = conn.exec_driver_sql(f'SELECT {cols} FROM "{table.physical_name}"')
            return sorted(tuple(r) for r in got)


def _ok(run: Any) -> None:
    assert run.status.value == "COMPLETED", run.error_message


def test_a_view_with_a_declared_key_that_repeats_fails_the_run(
    c: Container, pg_factory: Any
) -> None:
    """A view enforces no key: the same (a, b) three times completed, one arbitrary row kept."""
    src = _Source(
        c,
        pg_factory,
        "CREATE TABLE t (a text, b int, v text)",
        "INSERT INTO t VALUES ('x', 1, 'p'), ('y', 2, 's')",
        "CREATE VIEW tv AS SELECT * FROM t",
    )
    cfg = src.upsert("public.tv", ["a", "b"])
    _ok(src.run(cfg))
    before = src.stored("a, b, v")
    assert len(before) == 2
    src.sql("INSERT INTO t VALUES ('x', 1, 'q'), ('x', 1, 'r'), ('z', 3, 'new')")
    run = src.run(cfg)
    assert run.status.value == "FAILED"
    assert run.error_message == (
        "the data table's key cannot repeat in one load, and the source repeats 1 value of key"
        " columns 'a', 'b' (a = 'x', b = 1 in 3 rows); nothing was loaded"
    )
    assert src.stored("a, b, v") == before
    # Without the repeats the view loads again.
    src.sql("DELETE FROM t WHERE v IN ('p', 'q')")
    _ok(src.run(cfg))
    assert [r[2] for r in src.stored("a, b, v")] == ["r", "s", "new"]


def test_an_unbounded_numeric_key_is_one_row_whatever_its_scale(
    c: Container, pg_factory: Any
) -> None:
    """PostgreSQL's numeric 1.0 = 1.00: after the source rewrites its key's scale, the upsert
    updates the row. A SQLite warehouse stored the source's text, and kept '1.0' as a stale
    second row; it now stores the key's canonical text (decimal(p,s) keys keep their scale)."""
    src = _Source(
        c,
        pg_factory,
        "CREATE TABLE n (k numeric PRIMARY KEY, s numeric(10,2), v text)",
        "INSERT INTO n VALUES (1.0, 1, 'before'), (2.50, 2.5, 'x'), (-0.0, 0, 'zero'),"
        " ('NaN', NULL, 'nan'), (1E+2, 100, 'hundred'),"
        " (12345678901234567890123456789.10, NULL, 'long')",  # past Decimal's 28 digits
    )
    cfg = src.upsert("public.n")
    _ok(src.run(cfg))
    src.sql(
        "UPDATE n SET k = 1.00, v = 'after' WHERE k = 1", "UPDATE n SET k = 100.000 WHERE k = 100"
    )
    run = src.run(cfg)
    _ok(run)
    assert run.record_count == 6
    stored = src.stored("k, s, v")
    if _sqlite(c):
        assert stored == [
            ("0", "0.00", "zero"),
            ("1", "1.00", "after"),
            ("100", "100.00", "hundred"),
            ("12345678901234567890123456789.1", None, "long"),
            ("2.5", "2.50", "x"),
            ("NaN", None, "nan"),
        ]
    else:  # a key keeps the text its first load gave it (ON CONFLICT updates the other columns)
        assert stored == [
            ("0.0", "0.00", "zero"),
            ("1.0", "1.00", "after"),
            ("100", "100.00", "hundred"),
            ("12345678901234567890123456789.10", None, "long"),
            ("2.50", "2.50", "x"),
            ("NaN", None, "nan"),
        ]


def test_keys_equal_by_value_in_one_load_repeat_on_both_warehouses(
    c: Container, pg_factory: Any
) -> None:
    """A table without a primary key may hold 1.0 and 1.00: one key on PostgreSQL, two texts
    on SQLite (two rows there, one on a PostgreSQL warehouse). Both now fail alike."""
    src = _Source(
        c,
        pg_factory,
        "CREATE TABLE loose (k numeric, v text)",
        "INSERT INTO loose VALUES (1.0, 'a'), (1.00, 'b'), (2, 'c')",
    )
    run = src.run(src.upsert("public.loose", ["k"]))
    assert run.status.value == "FAILED"
    texts = ["1"] if _sqlite(c) else ["1.0", "1.00"]  # PostgreSQL groups them under either
    assert run.error_message in [
        "the data table's key cannot repeat in one load, and the source repeats 1 value of key"
        f" column 'k' (k = {text} in 2 rows); nothing was loaded"
        for text in texts
    ]


def test_old_sqlite_keys_written_as_the_source_wrote_them_are_matched(
    tmp_path: Path, pg_factory: Any
) -> None:
    """A SQLite table loaded by an earlier release holds the key '1.0': the next load rewrites
    it to '1' and updates that row. A table in which that release had already left a stale
    '1.0' beside '1' cannot tell which is current: the load fails, the table untouched."""
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    c = Container.build(settings)
    src = _Source(
        c,
        pg_factory,
        "CREATE TABLE n (k numeric PRIMARY KEY, v text)",
        "INSERT INTO n VALUES (1.0, 'before'), (7, 'seven')",
    )
    cfg = src.upsert("public.n")
    _ok(src.run(cfg))
    physical = c.data_tables.find(src.ws, "copy")
    assert physical is not None
    with c.warehouse.engine.begin() as conn:  # as the earlier release stored them
        conn.exec_driver_sql(f"UPDATE \"{physical.physical_name}\" SET k = '1.0' WHERE k = '1'")
    src.sql("UPDATE n SET k = 1.00, v = 'after' WHERE k = 1")
    _ok(src.run(cfg))
    assert src.stored("k, v") == [("1", "after"), ("7", "seven")]

    with c.warehouse.engine.begin() as conn:  # the stale second row that release made
        conn.exec_driver_sql(
            f"INSERT INTO \"{physical.physical_name}\" VALUES ('1.0', 'stale'), ('7.00', 'x')"
        )
    before = src.stored("k, v")
    run = src.run(cfg)
    assert run.status.value == "FAILED"
    assert run.error_message == (
        "the data table holds keys equal by value but written differently (e.g. 1.0 and 1.00)"
        " in key column 'k', as an earlier Egress release stored them on SQLite, and one of"
        " each is stale; load into a new data table"
    )
    assert src.stored("k, v") == before
    c.engine.dispose()
    c.warehouse.engine.dispose()


def test_the_canonical_text_of_an_unbounded_decimal_key() -> None:
    texts = ["1.0", "1.00", "-0.00", "0", "1E+2", "100.000", "-12.500", "0.050", "1E-30", "NaN"]
    assert [canonical_decimal(Decimal(t)) for t in texts] == [
        "1", "1", "0", "0", "100", "100", "-12.5", "0.05", "0.000000000000000000000000000001",
        "NaN",
    ]  # fmt: skip
    long = "12345678901234567890123456789012345678.10"  # past Decimal's default 28 digits
    assert canonical_decimal(Decimal(long)) == long[:-1]


def test_every_old_key_text_to_rewrite_is_found_by_its_shape() -> None:
    """The rewrite of old keys calls Python only on texts of a few shapes (GLOB): every
    number's text that is not canonical must have one of them (all texts of up to 6 of
    "01.-9e"), and a canonical one none (but NaN and the infinities)."""
    db = sqlite3.connect(":memory:")
    shapes = " OR ".join(f"?1 GLOB '{shape}'" for shape in _MAYBE_NOT_CANONICAL)
    for n in range(1, 7):
        for chars in itertools.product("01.-9e", repeat=n):
            text = "".join(chars)
            try:
                canonical = canonical_decimal(Decimal(text))
            except InvalidOperation:
                continue  # not a number
            (shaped,) = db.execute(f"SELECT {shapes}", [text]).fetchone()
            assert bool(shaped) == (canonical != text), text
