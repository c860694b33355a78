"""Split values whose ids or file names used to coincide: each value gets its own part, with
exactly its rows; and were two values ever to get one id or one name, the run fails naming
both (never one part for two values)."""

from __future__ import annotations

import csv
import io
import sqlite3
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
from egress.engine import job
from egress.sinks import split
from tests.conftest import make_settings
from tests.support.factories import submitted_configuration
from tests.support.migrated import migrate

# Same 40-character slug and the same first 6 hex digits of sha256 (c681bd): the one id
# ``product-category-electronics-item-000000-c681bd`` before, so b's rows went to a's file.
LONG_A = "product-category-electronics-item-000000000822"
LONG_B = "product-category-electronics-item-000000002892"


@pytest.fixture
def c(tmp_path: Path) -> Container:
    settings = make_settings(tmp_path, max_split_parts=20)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    return Container.build(settings)


def _run(c: Container, tmp_path: Path, values: list[str | None], fmt: str = "csv") -> RunRecord:
    """A split by ``k`` of a SQLite table whose row ``i`` (from 1) has ``values[i - 1]``."""
    path = tmp_path / "src.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT)")
        db.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values, 1)))
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, "src", "sqlite", {"path": str(path)}, None)
    c.services.catalog.discover(ws, conn.id)
    tpl = c.templates.list_page(ws, conn.id, PageRequest(0, 10)).items[0]
    cfg = submitted_configuration(
        c,
        ws,
        tpl.id,
        "sp",
        format=fmt,
        destination={"type": "storage", "path": "parts"},
        split_by="k",
    )
    execution, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    return c.executions.get(ws, cfg, execution.id).latest


def _rows(c: Container, key: str, fmt: str) -> list[dict[str, Any]]:
    data = b"".join(c.storage.stream(key))
    if fmt == "parquet":
        rows: list[dict[str, Any]] = pq.read_table(io.BytesIO(data)).to_pylist()
        return rows
    return list(csv.DictReader(io.StringIO(data.decode())))


def _parts(c: Container, run: RunRecord, fmt: str = "csv") -> dict[str | None, list[int]]:
    """Each part's value: the ids of the rows in its file (checked against its count)."""
    parts = {}
    for f in run.files:
        ids = sorted(int(r["id"]) for r in _rows(c, f.storage_key, fmt))
        assert f.record_count == len(ids)
        parts[f.sub_extract_value] = ids
    return parts


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_long_values_whose_ids_used_to_coincide_get_their_own_parts(
    c: Container, tmp_path: Path, fmt: str
) -> None:
    run = _run(c, tmp_path, [LONG_A, LONG_B, LONG_A, LONG_B, None], fmt)
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert _parts(c, run, fmt) == {LONG_A: [1, 3], LONG_B: [2, 4], None: [5]}
    ids = {f.sub_extract_value: f.sub_extract_id for f in run.files}
    assert ids == {v: sub_extract_id(v) for v in (LONG_A, LONG_B, None)}
    assert len(set(ids.values())) == 3 and run.record_count == 5


def test_a_value_equal_to_another_values_old_label_gets_its_own_file(
    c: Container, tmp_path: Path
) -> None:
    """``a/b``'s file was labelled ``a_b_c14cddc0``, the safe value ``a_b_c14cddc0``'s own
    label: one name for two parts, and the run failed with "every candidate file name … is
    taken". The safe value keeps its name; ``a/b``'s label now carries 16 hex digits."""
    run = _run(c, tmp_path, ["a/b", "a_b_c14cddc0", "a/b", "a_b_c14cddc0"])
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert _parts(c, run) == {"a/b": [1, 3], "a_b_c14cddc0": [2, 4]}
    labels = {f.sub_extract_value: f.file_name.split("_20")[0] for f in run.files}
    assert labels == {"a/b": "sp_a_b_c14cddc033f64b9d", "a_b_c14cddc0": "sp_a_b_c14cddc0"}
    assert all(f.file_name.startswith(f"sp_{split_label(f.sub_extract_value)}_") for f in run.files)


def test_two_values_with_one_id_fail_the_run_naming_both(
    c: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last check (ids are made never to coincide): the run fails, nothing is published."""
    monkeypatch.setattr(split, "sub_extract_id", lambda value: "same-000000")
    run = _run(c, tmp_path, [LONG_A, LONG_B, LONG_A])
    assert run.status is RunStatus.FAILED
    assert f"{LONG_A!r} and {LONG_B!r}" in (run.error_message or "")
    assert "'same-000000'" in (run.error_message or "")
    assert run.files == [] and list(c.storage.list()) == []


def test_two_values_with_one_file_name_fail_the_run_naming_both(
    c: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last check (labels are made never to coincide, but a name cut to fit keeps only 8
    hex digits of a hash): the run fails naming both values, not "every name is taken"."""
    monkeypatch.setattr(job, "split_label", lambda value: "same")
    run = _run(c, tmp_path, ["a", "b", "a"])
    assert run.status is RunStatus.FAILED
    message = run.error_message or ""
    assert "the values 'a' and 'b' both have the file name 'sp_same_" in message
    assert "taken" not in message
    assert run.files == [] and list(c.storage.list()) == []
