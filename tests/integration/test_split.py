"""Split by an attribute: one file per value in one pass, every part equal to the source rows."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from egress.container import Container
from egress.db.executions import RunRecord
from egress.domain.naming import split_label
from egress.domain.paging import PageRequest
from egress.domain.split import sub_extract_id
from egress.domain.status import RunStatus
from tests.conftest import make_settings
from tests.support.factories import submitted_configuration
from tests.support.migrated import migrate

REGIONS = ["EU", "NA", "APAC", "LATAM", "MEA", "Nordics", "Zürich/CH", "a b"]


@pytest.fixture
def c(tmp_path: Path) -> Container:
    settings = make_settings(tmp_path, max_split_parts=20)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    return Container.build(settings)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "src.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE sales (id INTEGER PRIMARY KEY, region TEXT, posted DATE,"
            " paid BOOLEAN, amount DECIMAL(10,2))"
        )
        rows = []
        for i in range(1, 2001):
            region = None if i % 23 == 0 else REGIONS[i % len(REGIONS)]
            rows.append((i, region, f"2026-01-{1 + i % 5:02d}", i % 3 == 0, f"{i}.50"))
        db.executemany("INSERT INTO sales VALUES (?, ?, ?, ?, ?)", rows)
        db.execute("CREATE TABLE many (id INTEGER PRIMARY KEY, k TEXT)")
        db.executemany("INSERT INTO many VALUES (?, ?)", [(i, f"k{i}") for i in range(50)])
    return path


def _source_rows(path: Path, table: str = "sales") -> list[dict[str, Any]]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY id")]


def _setup(
    c: Container, source: Path, split_by: str, fmt: str, table: str = "sales"
) -> tuple[str, str]:
    ws = c.workspaces.ensure_workspace("t")
    existing = c.connections.list_page(ws, PageRequest(0, 10)).items
    conn = (
        existing[0]
        if existing
        else c.connections.create(ws, "src", "sqlite", {"path": str(source)}, None)
    )
    c.services.catalog.discover(ws, conn.id)
    tpl = next(
        t
        for t in c.templates.list_page(ws, conn.id, PageRequest(0, 10)).items
        if t.name == f"main.{table}"
    )
    cfg_id = submitted_configuration(
        c,
        ws,
        tpl.id,
        f"split_{split_by}_{fmt}",
        format=fmt,
        destination={"type": "storage", "path": "parts"},
        split_by=split_by,
    )
    return ws, cfg_id


def _read(c: Container, key: str, fmt: str) -> list[dict[str, Any]]:
    data = b"".join(c.storage.stream(key))
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(data)).to_pylist()
    if fmt == "jsonl":
        return [json.loads(line) for line in data.decode().splitlines()]
    return list(csv.DictReader(io.StringIO(data.decode())))


def _canonical(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):  # SQLite booleans
        return "true" if value else "false"
    return str(value)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("split_by", ["region", "posted", "paid"])
def test_every_part_holds_exactly_the_rows_with_its_value(
    c: Container, source: Path, split_by: str, fmt: str
) -> None:
    ws, cfg = _setup(c, source, split_by, fmt)
    execution, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, execution.id).latest
    assert run.status is RunStatus.COMPLETED, run.error_message
    expected: dict[str | None, list[int]] = defaultdict(list)
    for row in _source_rows(source):
        value = row[split_by]
        key = _canonical(value) if split_by == "paid" else value
        expected[key].append(row["id"])
    by_value = {f.sub_extract_value: f for f in run.files}
    assert set(by_value) == set(expected)
    assert run.record_count == 2000
    for value, ids in expected.items():
        f = by_value[value]
        assert f.sub_extract_id == sub_extract_id(value)
        assert f.record_count == len(ids)
        rows = _read(c, f.storage_key, fmt)
        assert sorted(int(r["id"]) for r in rows) == ids
        shown = "null" if value is None else value.replace("/", "_").replace(" ", "_")
        assert f.file_name.startswith(f"split_{split_by}_{fmt}_{shown}_")
    manifest_key = next(o.key for o in c.storage.list() if o.key.endswith(".manifest.json"))
    manifest = json.loads(b"".join(c.storage.stream(manifest_key)))
    assert manifest["executionId"] == execution.id and manifest["run"] == 1
    assert {m["subExtractValue"] for m in manifest["files"]} == set(expected)
    for m in manifest["files"]:
        f = by_value[m["subExtractValue"]]
        assert (m["name"], m["recordCount"], m["bytes"], m["sha256"]) == (
            f.file_name,
            f.record_count,
            f.size_bytes,
            f.sha256,
        )
    # Nothing but the parts and the manifest is left in storage.
    keys = sorted(o.key for o in c.storage.list())
    assert keys == sorted([f.storage_key for f in run.files] + [manifest_key])


def test_text_split_has_eight_values_and_nulls(c: Container, source: Path) -> None:
    ws, cfg = _setup(c, source, "region", "csv")
    execution, _ = c.services.executions.trigger(ws, cfg, {})
    c.worker().run_once()
    values = {f.sub_extract_value for f in c.executions.get(ws, cfg, execution.id).latest.files}
    assert values == {*REGIONS, None}


def test_too_many_parts_fails_and_publishes_nothing(c: Container, source: Path) -> None:
    ws, cfg = _setup(c, source, "k", "csv", table="many")
    execution, _ = c.services.executions.trigger(ws, cfg, {})
    c.worker().run_once()
    run = c.executions.get(ws, cfg, execution.id).latest
    assert run.status is RunStatus.FAILED
    assert run.error_message is not None
    assert "more than 20 distinct values" in run.error_message
    assert "EGRESS_MAX_SPLIT_PARTS" in run.error_message
    assert run.files == []
    assert list(c.storage.list()) == []


def _split_unexported(
    c: Container, kind: str, settings: dict[str, Any], table: str, fields: list[str], fmt: str
) -> RunRecord:
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, f"{kind}_{fmt}", kind, settings, None)
    c.services.catalog.discover(ws, conn.id)
    tpl = next(
        t
        for t in c.templates.list_page(ws, conn.id, PageRequest(0, 50)).items
        if t.name in (table, f"public.{table}", f"main.{table}")
    )
    cfg = submitted_configuration(
        c, ws, tpl.id, f"{kind}_{fmt}", format=fmt, fields=fields, split_by="region"
    )
    execution, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    return c.executions.get(ws, cfg, execution.id).latest


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("kind", ["files", "postgresql", "sqlite"])
def test_split_by_a_field_that_is_not_exported_splits_by_that_field(
    c: Container, tmp_path: Path, request: pytest.FixtureRequest, kind: str, fmt: str
) -> None:
    """The split column is read by name, routes the rows, and stays out of the files (it used
    to be the last exported column: parts named after ``id`` values)."""
    rows = [(i, 10 * i, ["EU", "US", "APAC"][i % 3]) for i in range(1, 16)]
    if kind == "files":
        folder = tmp_path / "in"
        folder.mkdir()
        lines = "".join(f"{i},{v},{r}\n" for i, v, r in rows)
        (folder / "sales.csv").write_text(f"id,v,region\n{lines}")
        settings: dict[str, Any] = {"url": folder.as_uri()}
        table = "sales.csv"
    elif kind == "postgresql":
        db = request.getfixturevalue("pg_db")
        with db.connect() as conn:
            conn.execute("CREATE TABLE sales (id int PRIMARY KEY, v int, region text)")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO sales VALUES (%s, %s, %s)", rows)
        settings = {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"}
        table = "sales"
    else:
        path = tmp_path / "split.db"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE sales (id INTEGER PRIMARY KEY, v INTEGER, region TEXT)")
            db.executemany("INSERT INTO sales VALUES (?, ?, ?)", rows)
        settings = {"path": str(path)}
        table = "sales"
    run = _split_unexported(c, kind, settings, table, ["id", "v"], fmt)
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert {f.sub_extract_value for f in run.files} == {"EU", "US", "APAC"}
    for f in run.files:
        got = _read(c, f.storage_key, fmt)
        assert all(list(r) == ["id", "v"] for r in got)  # the split field is not in the file
        want = sorted((i, v) for i, v, r in rows if r == f.sub_extract_value)
        assert sorted((int(r["id"]), int(r["v"])) for r in got) == want
        assert f.record_count == len(want)


def test_values_that_sanitise_to_one_name_each_get_their_own_file(
    c: Container, tmp_path: Path
) -> None:
    """``a/b``, ``a b``, ``a_b``, ``a?b`` used to fail the run (three candidate names for four
    files); now every value has its own stable name, whatever the row order."""
    path = tmp_path / "clash.db"
    values = ["a/b", "a b", "a_b", "a?b", "null"]
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE clash (id INTEGER PRIMARY KEY, k TEXT)")
        db.executemany("INSERT INTO clash VALUES (?, ?)", list(enumerate([*values, None])))
    ws, cfg = _setup(c, path, "k", "csv", table="clash")
    names: list[dict[str | None, str]] = []
    for _ in range(2):
        execution, _ = c.services.executions.trigger(ws, cfg, {})
        assert c.worker().run_once()
        run = c.executions.get(ws, cfg, execution.id).latest
        assert run.status is RunStatus.COMPLETED, run.error_message
        assert len({f.file_name for f in run.files}) == 6
        for f in run.files:
            assert f.file_name.startswith(f"split_k_csv_{split_label(f.sub_extract_value)}_")
            assert [r["k"] for r in _read(c, f.storage_key, "csv")] == [f.sub_extract_value or ""]
        names.append({f.sub_extract_value: f.file_name.split("_20")[0] for f in run.files})
        with sqlite3.connect(path) as db:  # the same values in the opposite row order
            db.execute("UPDATE clash SET id = 100 - id")
    assert names[0] == names[1]


def test_a_pattern_that_names_every_run_alike_fails_the_later_run(
    c: Container, source: Path
) -> None:
    """As the README says: no silent ``_<execution id>`` suffix for such a pattern. The first
    run's file and manifest sit side by side: the data file's name plus ``.manifest.json``."""
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, "src", "sqlite", {"path": str(source)}, None)
    c.services.catalog.discover(ws, conn.id)
    tpl = next(
        t
        for t in c.templates.list_page(ws, conn.id, PageRequest(0, 10)).items
        if t.name == "main.many"
    )
    cfg = submitted_configuration(
        c, ws, tpl.id, "fixed", file_name_pattern="{configurationName}_v{run}.{ext}"
    )
    first, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, first.id).latest
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert run.files[0].file_name == "fixed_v1.csv"
    keys = sorted(o.key.rsplit("/", 1)[-1] for o in c.storage.list())
    assert keys == ["fixed_v1.csv", "fixed_v1.csv.manifest.json"]

    second, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, second.id).latest
    assert run.status is RunStatus.FAILED
    assert run.error_message is not None
    assert "'fixed_v1.csv'" in run.error_message and "same names" in run.error_message
    assert sorted(o.key.rsplit("/", 1)[-1] for o in c.storage.list()) == keys


def test_parquet_parts_of_one_run_share_one_dictionary_choice(c: Container, source: Path) -> None:
    """Which columns a Parquet file dictionary-encodes is decided once a run, from the first
    rows written (``sinks.writers.DictionaryChoice``), so every part of a split has the same
    column encodings: here ``note`` repeats in the first part's rows, is distinct in the
    other's, and is dictionary-encoded in both."""
    with sqlite3.connect(source) as db:
        db.execute("CREATE TABLE mixed (id INTEGER PRIMARY KEY, k TEXT, note TEXT)")
        rows = [(i, "a", "same") for i in range(1, 101)]
        rows += [(i, "b", f"note {i}") for i in range(101, 201)]
        db.executemany("INSERT INTO mixed VALUES (?, ?, ?)", rows)
    ws, cfg = _setup(c, source, "k", "parquet", table="mixed")
    execution, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, execution.id).latest
    assert run.status is RunStatus.COMPLETED, run.error_message
    encodings = {}
    for f in run.files:
        data = b"".join(c.storage.stream(f.storage_key))
        meta = pq.ParquetFile(io.BytesIO(data)).metadata.row_group(0)
        column = next(
            meta.column(i)
            for i in range(meta.num_columns)
            if meta.column(i).path_in_schema == "note"
        )
        encodings[f.sub_extract_value] = "RLE_DICTIONARY" in column.encodings
        assert [r["id"] for r in _read(c, f.storage_key, "parquet")] == [
            r[0] for r in rows if r[1] == f.sub_extract_value
        ]
    assert encodings == {"a": True, "b": True}
