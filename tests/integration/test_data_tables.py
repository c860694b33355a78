"""Data tables: append and upsert loads into a SQLite or PostgreSQL warehouse; failed loads
leave the table as it was."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from egress.container import Container
from egress.domain.catalog import ColumnInfo
from egress.domain.errors import Conflict, Invalid
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from egress.services import executions
from egress.sinks.data_table import target_table
from tests.conftest import make_settings
from tests.support.factories import configuration_values, submitted_configuration
from tests.support.migrated import migrate

_n = itertools.count()


@pytest.fixture(params=["sqlite-warehouse", "postgresql-warehouse"])
def c(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    extra: dict[str, Any] = {"batch_rows": 10}
    if request.param == "postgresql-warehouse":
        extra["warehouse_url"] = request.getfixturevalue("pg_factory")("egress_wh").sqlalchemy_url
    settings = make_settings(tmp_path, **extra)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings)
    yield container
    container.engine.dispose()
    container.warehouse.engine.dispose()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "src.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price DECIMAL(8,2),"
            " qty INTEGER)"
        )
        db.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?)",
            [(i, f"item {i}", f"{i}.50", i % 7) for i in range(1, 101)],
        )
    return path


def _config(c: Container, source: Path, mode: str, table: str = "items_copy") -> tuple[str, str]:
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, f"src{next(_n)}", "sqlite", {"path": str(source)}, None)
    c.services.catalog.discover(ws, conn.id)
    tpl = c.templates.list_page(ws, conn.id, PageRequest(0, 10)).items[0]
    cfg_id = submitted_configuration(
        c,
        ws,
        tpl.id,
        f"load_{next(_n)}",
        destination={"type": "dataTable", "dataTable": table, "mode": mode},
    )
    return ws, cfg_id


def _run(c: Container, ws: str, cfg: str, **options: Any) -> Any:
    execution, _ = c.services.executions.trigger(ws, cfg, options)
    assert c.worker().run_once()
    return c.executions.get(ws, cfg, execution.id)


def _table(c: Container, ws: str, name: str = "items_copy") -> list[tuple[Any, ...]]:
    record = c.data_tables.list_page(ws, PageRequest(0, 10)).items
    physical = next(t.physical_name for t in record if t.name == name)
    with c.warehouse.engine.connect() as conn:
        rows = conn.execute(sa.text(f'SELECT id, name, price, qty FROM "{physical}" ORDER BY id'))
        return [(r[0], r[1], Decimal(str(r[2])), r[3]) for r in rows]


def _source(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, name, price, qty FROM items ORDER BY id").fetchall()
    return [(r[0], r[1], Decimal(str(r[2])).quantize(Decimal("0.01")), r[3]) for r in rows]


def test_upsert_updates_and_inserts_by_key(c: Container, source: Path) -> None:
    ws, cfg = _config(c, source, "upsert")
    first = _run(c, ws, cfg).latest
    assert first.status is RunStatus.COMPLETED and first.record_count == 100
    assert _table(c, ws) == _source(source)
    with sqlite3.connect(source) as db:
        db.execute("UPDATE items SET name = 'renamed ' || id, price = 9.99 WHERE id <= 10")
        db.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?)",
            [(i, f"new {i}", "1.00", 1) for i in range(101, 106)],
        )
    second = _run(c, ws, cfg).latest
    assert second.status is RunStatus.COMPLETED and second.record_count == 105
    assert _table(c, ws) == _source(source)
    record = c.data_tables.list_page(ws, PageRequest(0, 10)).items[0]
    assert (record.name, record.row_count, record.primary_key) == ("items_copy", 105, ["id"])
    # Selected rows through an upsert touch only those keys.
    with sqlite3.connect(source) as db:
        db.execute("UPDATE items SET qty = 99")
    _run(c, ws, cfg, selectAll=False, rows=[{"id": 3}])
    assert [r[3] for r in _table(c, ws)][:4] == [1, 2, 99, 4]


def test_append_adds_every_run(c: Container, source: Path) -> None:
    ws, cfg = _config(c, source, "append", "items_log")
    _run(c, ws, cfg, whereClause="id <= 30")
    _run(c, ws, cfg, whereClause="id <= 30")
    record = c.data_tables.list_page(ws, PageRequest(0, 10)).items[0]
    assert record.row_count == 60 and record.primary_key == []


def test_failed_load_leaves_the_table_untouched(c: Container, source: Path) -> None:
    ws, cfg = _config(c, source, "upsert")
    _run(c, ws, cfg)
    before = _table(c, ws)
    with sqlite3.connect(source) as db:  # a bad value at row 95: nine batches load first
        db.execute("UPDATE items SET name = 'changed', qty = 'not a number' WHERE id = 95")
        db.execute("UPDATE items SET name = 'changed too'")
    failed = _run(c, ws, cfg).latest
    assert failed.status is RunStatus.FAILED
    assert failed.error_message is not None and "qty" in failed.error_message
    assert _table(c, ws) == before


def test_rules(c: Container, source: Path) -> None:
    ws, cfg = _config(c, source, "upsert")
    execution = _run(c, ws, cfg)
    with pytest.raises(Conflict, match="only extractions delivered to storage"):
        executions.run_with_files(execution, None)
    ws = c.workspaces.ensure_workspace("t")
    tpl = c.templates.list_page(ws, None, PageRequest(0, 10)).items[0]
    base = {
        "name": "bad",
        "template_id": tpl.id,
        "fields": None,
        "format": "csv",
        "compression": "none",
        "file_name_pattern": None,
        "start_date": None,
        "end_date": None,
    }
    with pytest.raises(Invalid, match="is only for storage"):
        c.services.configurations.create(
            ws,
            {
                **base,
                "split_by": "name",
                "destination": {"type": "dataTable", "dataTable": "x", "mode": "append"},
            },
        )


# ------------------------------------------------------------------------ keys that are NULL
def _files_template(c: Container, tmp_path: Path, table: pa.Table, key: list[str]) -> str:
    """A files connection on one Parquet file, and a template of it keyed by ``key``."""
    folder = tmp_path / f"in{next(_n)}"
    folder.mkdir()
    pq.write_table(table, folder / "keys.parquet")
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, f"files{next(_n)}", "files", {"url": folder.as_uri()}, None)
    tpl = c.services.catalog.create_custom_template(
        ws, conn.id, f"keyed{next(_n)}", "keys.parquet", None, key, None, None
    )
    return tpl.id


def test_a_null_key_fails_the_run_and_is_never_invented(c: Container, tmp_path: Path) -> None:
    """An int32 key on a SQLite warehouse was an INTEGER PRIMARY KEY, i.e. the rowid: NULL
    became 2, 3, 4… and rows were lost. Now the run fails naming the column and the count."""
    rows = pa.table({"id": pa.array([1, None, None], pa.int32()), "v": pa.array(["x", "y", "z"])})
    ws = c.workspaces.ensure_workspace("t")
    tpl = _files_template(c, tmp_path, rows, ["id"])
    destination = {"type": "dataTable", "dataTable": "nullkeys", "mode": "upsert"}
    cfg = submitted_configuration(c, ws, tpl, "nullkeys", destination=destination)
    for _ in range(2):  # the same on every run: nothing is loaded, nothing is made up
        run = _run(c, ws, cfg).latest
        assert run.status is RunStatus.FAILED
        assert run.error_message == (
            "the data table's key cannot be NULL, and the source has NULL in key column "
            "'id' in 2 rows; nothing was loaded"
        )
        # It read 3 records and delivered none: progress, not a record count.
        assert (run.record_count, run.processed) == (0, 3)
    # Its first load never committed: listed with no rows, and its rows page is empty.
    table = next(t for t in c.data_tables.list_page(ws, PageRequest(0, 10)).items)
    assert (table.name, table.row_count) == ("nullkeys", 0)
    assert c.services.data_tables.rows_page(ws, table.id, 10, None).rows == []


def test_a_key_repeated_in_one_load_fails_the_run_and_loads_nothing(
    c: Container, tmp_path: Path
) -> None:
    """A Parquet file's declared key is not enforced: ids 1 and 3 twice completed with one
    arbitrary row each ("the last one") and a record count above the rows kept. Now the run
    fails naming the key, how many values repeat and the first one; the table is as it was."""

    def rows(ids: list[int], v: list[str]) -> pa.Table:
        return pa.table({"id": pa.array(ids, pa.int64()), "v": pa.array(v)})

    ws = c.workspaces.ensure_workspace("t")
    tpl = _files_template(c, tmp_path, rows([1, 2], ["a", "b"]), ["id"])
    parquet = next(tmp_path.glob("in*/keys.parquet"))
    destination = {"type": "dataTable", "dataTable": "repeats", "mode": "upsert"}
    cfg = submitted_configuration(c, ws, tpl, "repeats", destination=destination)
    assert _run(c, ws, cfg).latest.status is RunStatus.COMPLETED
    table = c.data_tables.find(ws, "repeats")
    assert table is not None

    def stored() -> list[tuple[Any, ...]]:
        with c.warehouse.engine.connect() as conn:
            got = conn.execute(sa.text(f'SELECT id, v FROM "{table.physical_name}" ORDER BY id'))
            return [tuple(r) for r in got]

    pq.write_table(rows([3, 1, 2, 1, 3, 3], ["c1", "a1", "b1", "a2", "c2", "c3"]), parquet)
    run = _run(c, ws, cfg).latest
    assert run.status is RunStatus.FAILED
    assert run.error_message == (
        "the data table's key cannot repeat in one load, and the source repeats 2 values of key"
        " column 'id' (e.g. id = 1 in 2 rows); nothing was loaded"
    )
    assert (run.record_count, run.processed) == (0, 6)
    assert stored() == [(1, "a"), (2, "b")]
    # Without the repeats the same configuration loads.
    pq.write_table(rows([3, 1, 2], ["c", "a1", "b1"]), parquet)
    run = _run(c, ws, cfg).latest
    assert run.status is RunStatus.COMPLETED and run.record_count == 3
    assert stored() == [(1, "a1"), (2, "b1"), (3, "c")]


def test_a_key_only_table_repeating_a_key_fails_too(c: Container, tmp_path: Path) -> None:
    """With no other column the merge is ON CONFLICT DO NOTHING, which neither warehouse
    refuses by itself: the repeat still fails the run."""
    ws = c.workspaces.ensure_workspace("t")
    tpl = _files_template(c, tmp_path, pa.table({"id": pa.array([2, 1, 2], pa.int64())}), ["id"])
    destination = {"type": "dataTable", "dataTable": "ids", "mode": "upsert"}
    run = _run(c, ws, submitted_configuration(c, ws, tpl, "ids", destination=destination)).latest
    assert run.status is RunStatus.FAILED
    assert run.error_message == (
        "the data table's key cannot repeat in one load, and the source repeats 1 value of key"
        " column 'id' (id = 2 in 2 rows); nothing was loaded"
    )
    table = c.data_tables.find(ws, "ids")
    assert table is not None and table.row_count == 0


def test_a_year_outside_1_to_9999_fails_the_load_naming_the_column(
    c: Container, tmp_path: Path
) -> None:
    """Rows reach the warehouse as Python values, which have no BC or five-digit years: the
    run fails with the column's name instead of a driver's "date value out of range"."""
    rows = pa.table(
        {
            "id": pa.array([1, 2], pa.int32()),
            "d": pa.array([0, -735160], pa.int32()).view(pa.date32()),  # 1970-01-01, -0043-03-15
        }
    )
    ws = c.workspaces.ensure_workspace("t")
    tpl = _files_template(c, tmp_path, rows, ["id"])
    destination = {"type": "dataTable", "dataTable": "bc", "mode": "upsert"}
    run = _run(c, ws, submitted_configuration(c, ws, tpl, "bc", destination=destination)).latest
    assert run.status is RunStatus.FAILED
    assert run.error_message == (
        "column 'd' holds a value dated outside the years 1 to 9999, which a data table cannot"
        " hold; export it as a file, or filter it out with a whereClause"
    )


def test_a_null_in_any_column_of_a_composite_key_fails_the_run(
    c: Container, tmp_path: Path
) -> None:
    path = tmp_path / "composite.db"
    with sqlite3.connect(path) as db:  # SQLite lets a non-INTEGER primary key hold NULL
        db.execute("CREATE TABLE pairs (a TEXT, b BIGINT, v TEXT, PRIMARY KEY (a, b))")
        db.executemany(
            "INSERT INTO pairs VALUES (?, ?, ?)",
            [("k", 1, "ok"), (None, 2, "no a"), ("k", None, "no b"), (None, None, "neither")],
        )
    ws, cfg = _config(c, path, "upsert", "pairs_copy")
    run = _run(c, ws, cfg).latest
    assert run.status is RunStatus.FAILED
    assert run.error_message is not None
    assert "key column 'a' in 2 rows, 'b' in 2 rows; nothing was loaded" in run.error_message
    # Fixed at the source, the next run loads.
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM pairs WHERE a IS NULL OR b IS NULL")
    assert _run(c, ws, cfg).latest.status is RunStatus.COMPLETED
    with c.warehouse.engine.connect() as conn:
        physical = c.data_tables.find(ws, "pairs_copy")
        assert physical is not None
        got = conn.execute(sa.text(f'SELECT a, b, v FROM "{physical.physical_name}"')).all()
    assert [tuple(r) for r in got] == [("k", 1, "ok")]


def test_a_keyed_sqlite_table_refuses_a_null_key_by_itself() -> None:
    """Besides the loader's check: the warehouse table cannot turn NULL into a rowid."""
    engine = sa.create_engine("sqlite://")
    table = target_table(
        sa.MetaData(), "t", [ColumnInfo("id", "int32"), ColumnInfo("v", "string")], ["id"]
    )
    with engine.begin() as conn:
        table.create(conn)
        with pytest.raises(sa.exc.IntegrityError, match="NOT NULL"):
            conn.execute(table.insert().values(id=None, v="y"))


# ----------------------------------------------- one table, one mode, one key, one template
def _values(tpl: str, name: str, table: str, mode: str, **extra: Any) -> dict[str, Any]:
    return configuration_values(
        tpl, name, destination={"type": "dataTable", "dataTable": table, "mode": mode}, **extra
    )


def test_a_table_is_loaded_only_as_it_was_created(c: Container, source: Path) -> None:
    ws, cfg = _config(c, source, "upsert", "items_copy")
    tpl = c.configurations.get(ws, cfg).template_id
    assert _run(c, ws, cfg).latest.status is RunStatus.COMPLETED

    # Another mode, into the table that merges by id: refused when saved.
    with pytest.raises(Conflict) as append:
        c.services.configurations.create(ws, _values(tpl, "log", "items_copy", "append"))
    assert str(append.value) == (
        "data table 'items_copy' was created to be loaded by upsert on (id) from template "
        "'main.items'; this configuration would load it by append from template 'main.items'. "
        "A data table keeps the mode, key and template it was created with: load into a data "
        "table of another name"
    )
    # Switching the loading configuration itself to append: refused too.
    with pytest.raises(Conflict, match="would load it by append"):
        c.services.configurations.update(
            ws, cfg, {"destination": {"type": "dataTable", "dataTable": "items_copy"}}
        )
    # Another key (a custom template keyed by name).
    conn_id = c.templates.get(ws, tpl).connection_id
    by_name = c.services.catalog.create_custom_template(
        ws, conn_id, "by_name", "main.items", None, ["name"], None, None
    )
    with pytest.raises(Conflict, match=r"would load it by upsert on \(name\) from template"):
        c.services.configurations.create(ws, _values(by_name.id, "k", "items_copy", "upsert"))
    # Same key, another template.
    same_key = c.services.catalog.create_custom_template(
        ws, conn_id, "same_key", "main.items", ["id", "name"], ["id"], None, None
    )
    with pytest.raises(Conflict, match="from template 'same_key'"):
        c.services.configurations.create(ws, _values(same_key.id, "t", "items_copy", "upsert"))
    # The same way from the same template: a second loader is fine.
    second = c.services.configurations.create(ws, _values(tpl, "again", "items_copy", "upsert"))
    # An upsert must deliver its key.
    with pytest.raises(Invalid, match="fields must include 'id'") as no_key:
        c.services.configurations.update(ws, second.id, {"fields": ["name", "qty"]})
    assert no_key.value.errors[0].loc == ("body", "fields")


def test_before_the_first_load_the_configurations_define_the_table(
    c: Container, source: Path
) -> None:
    ws, cfg = _config(c, source, "append", "not_yet")
    tpl = c.configurations.get(ws, cfg).template_id
    name = c.configurations.get(ws, cfg).name
    with pytest.raises(Conflict) as raised:
        c.services.configurations.create(ws, _values(tpl, "other", "not_yet", "upsert"))
    assert str(raised.value).startswith(
        f"configuration {name!r} loads data table 'not_yet' by append from template "
        "'main.items'; this configuration would load it by upsert on (id)"
    )
    # The configuration alone may still change its own mind before anything was loaded.
    c.services.configurations.update(
        ws, cfg, {"destination": {"type": "dataTable", "dataTable": "not_yet", "mode": "upsert"}}
    )


def test_a_run_checks_the_table_again(c: Container, source: Path) -> None:
    """A configuration saved before these rules (stored unchecked here) fails its run with the
    same message, the table untouched, instead of an IntegrityError from the warehouse."""
    ws, cfg = _config(c, source, "upsert", "checked")
    _run(c, ws, cfg)
    before = _table(c, ws, "checked")
    legacy = submitted_configuration(c, ws, c.configurations.get(ws, cfg).template_id, "legacy")
    c.configurations.update(
        ws, legacy, {"destination": {"type": "dataTable", "dataTable": "checked", "mode": "append"}}
    )
    run = _run(c, ws, legacy).latest
    assert run.status is RunStatus.FAILED
    assert run.error_message is not None
    assert run.error_message.startswith(
        "data table 'checked' was created to be loaded by upsert on (id) from template "
        "'main.items'; this configuration would load it by append"
    )
    assert (run.record_count, run.processed) == (0, 0)
    assert _table(c, ws, "checked") == before
