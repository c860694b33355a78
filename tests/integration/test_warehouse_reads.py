"""Reading data tables while another table loads: on the SQLite warehouse a load holds the
write lock from its first batch to its commit, and every read (the rows preview, a bulk
export's reader, the has-table check) queued behind it, then failed with "database is locked"
(a 503) after 30 s. Reads now take a WAL snapshot and never wait for the lock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from egress.db.engine import make_engine
from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.plan import ReadPlan
from egress.sinks.data_table import Warehouse

FIELDS = [ColumnInfo("id", "int64", False), ColumnInfo("v", "string")]


def _batch(ids: range) -> pa.RecordBatch:
    return pa.record_batch({"id": pa.array(ids, pa.int64()), "v": [f"v{i}" for i in ids]})


def _load(warehouse: Warehouse, run: str, name: str, batches: Iterator[pa.RecordBatch]) -> None:
    warehouse.load(run, name, FIELDS, [], ["id"], "upsert", batches, lambda: None, lambda _: None)


def test_reads_of_a_table_do_not_wait_for_another_tables_load(tmp_path: Path) -> None:
    warehouse = Warehouse(make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}"))
    _load(warehouse, "run-b", "b", iter([_batch(range(3))]))
    started, release = threading.Event(), threading.Event()

    def held_open() -> Iterator[pa.RecordBatch]:
        yield _batch(range(100))
        started.set()  # the load holds the warehouse's write lock from here
        assert release.wait(60)
        yield _batch(range(100, 200))

    loading = threading.Thread(target=_load, args=(warehouse, "run-a", "a", held_open()))
    loading.start()
    try:
        assert started.wait(30)
        rows = warehouse.rows("b", ["id"], ["int64"], [0], 10)
        plan = ReadPlan(TableRef(None, "b"), FIELDS, FIELDS, order=["id"], limit=10)
        read = pa.Table.from_batches(list(warehouse.read("b", plan, 100))).to_pylist()
        found = (warehouse.has_table("b"), warehouse.has_table("a"))
    finally:
        release.set()
        loading.join()
    assert rows == [{"id": 1, "v": "v1"}, {"id": 2, "v": "v2"}]
    assert read == [{"id": 0, "v": "v0"}, {"id": 1, "v": "v1"}, {"id": 2, "v": "v2"}]
    assert found == (True, False)  # a's first load had not committed yet
    assert warehouse.has_table("a")
    assert len(warehouse.rows("a", ["id"], ["int64"], None, 1000)) == 200
