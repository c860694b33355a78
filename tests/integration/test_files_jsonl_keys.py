"""JSONL keys that first appear after the first 1 MiB of a file (issue 13 item 21): the
template's columns come from that first block, so such a key is not read — and the run says
so, naming the file, the key and the line it first appears on, on disk and in S3."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import obstore
import pytest

from egress.container import Container
from egress.db.executions import RunRecord
from egress.domain.catalog import TableRef
from egress.domain.paging import PageRequest
from egress.domain.plan import ReadPlan
from egress.domain.status import RunStatus
from egress.sources import SourceError
from egress.sources.files import FilesSettings, FilesSource
from egress.sources.files.jsonl import BLOCK_BYTES
from tests.support.factories import sqlite_container, submitted_configuration
from tests.support.policy import policy_for
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server

PLAIN = 23_000  # lines of about 50 bytes: more than the first 1 MiB
GAP = 25_000  # plain lines between the two late blocks, so they are blocks apart


def _row(i: int, **extra: Any) -> dict[str, Any]:
    return {"id": i, "name": f"row-{i:06d}", "doc": {"k": "v"}, **extra}


def _lines() -> list[dict[str, Any]]:
    """Plain rows past the first block; then ``late`` (an int: Arrow infers it) and a nested
    key; more plain rows; then ``mixed``, text then number in one block (Arrow cannot infer
    it, so the block is read again ignoring it)."""
    rows = [_row(i) for i in range(PLAIN)]
    rows += [_row(PLAIN, late=1), _row(PLAIN + 1, late=2, doc={"k": "w", "z": 1})]
    rows += [_row(i) for i in range(PLAIN + 2, PLAIN + 2 + GAP)]
    at = PLAIN + 2 + GAP
    rows += [_row(at, mixed="a"), _row(at + 1, mixed=3), _row(at + 2)]
    return rows


def _jsonl() -> bytes:
    data = "".join(json.dumps(r) + "\n" for r in _lines()).encode()
    first = data[:BLOCK_BYTES]
    assert b"late" not in first and len(data) > 2 * BLOCK_BYTES  # the premise of the test
    return data


MIXED_LINE = PLAIN + 2 + GAP + 1  # 1-based line of the first row with ``mixed``
WARNINGS = [
    "events.jsonl: key 'late' (first on line 23001) is not in the template, whose columns "
    "come from the first 1 MiB; it was not read",
    "events.jsonl: column 'doc' has nested keys that are not in the template's type, which "
    "comes from the first 1 MiB; they were not read",
    f"events.jsonl: key 'mixed' (first on line {MIXED_LINE}) is not in the template, whose "
    "columns come from the first 1 MiB; it was not read",
]


def _csv_line(row: dict[str, Any]) -> str:
    """A row as the CSV file has it: the template's columns only, ``doc`` as JSON text with
    the nested keys of the template's type."""
    return f'{row["id"]},"{row["name"]}","{{""k"": ""{row["doc"]["k"]}""}}"'


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    with sqlite_container(tmp_path) as container:
        yield container


def _run(
    c: Container, settings: dict[str, Any], secrets: bytes | None, name: str, where: str | None
) -> tuple[RunRecord, list[str]]:
    """Discover the connection, run its template ``name`` once into CSV: the run and its lines."""
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, "events", "files", settings, secrets)
    c.services.catalog.discover(ws, conn.id)
    tpl = next(
        t for t in c.templates.list_page(ws, conn.id, PageRequest(0, 50)).items if t.name == name
    )
    assert [f.name for f in tpl.fields] == ["id", "name", "doc"]
    cfg = submitted_configuration(c, ws, tpl.id, "events", format="csv")
    ex, _ = c.services.executions.trigger(ws, cfg, {"whereClause": where} if where else {})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, ex.id).latest
    assert run.status is RunStatus.COMPLETED, run.error_message
    return run, b"".join(c.storage.stream(run.files[0].storage_key)).decode().splitlines()


def test_late_keys_are_named_on_the_run_and_every_row_is_delivered(
    c: Container, tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "events.jsonl").write_bytes(_jsonl())
    run, lines = _run(c, {"url": (tmp_path / "in").as_uri()}, None, "events.jsonl", None)
    assert run.warnings == WARNINGS
    assert run.record_count == PLAIN + GAP + 5
    assert lines == ['"id","name","doc"', *map(_csv_line, _lines())]


def test_late_keys_in_a_gzipped_file_in_a_bucket(c: Container, s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    obstore.put(s3_server.store(bucket), "landing/events.jsonl.gz", gzip.compress(_jsonl()))
    settings = {"url": f"s3://{bucket}/landing", "endpoint": s3_server.endpoint, "region": REGION}
    secrets = c.secret_box.seal({"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY})
    # The filter applies to each block's rows, after the block's keys are checked.
    where = f"id < 2 OR id > {PLAIN + GAP}"
    run, lines = _run(c, settings, secrets, "events.jsonl.gz", where)
    assert run.warnings == [w.replace("events.jsonl:", "events.jsonl.gz:") for w in WARNINGS]
    kept = [r for r in _lines() if r["id"] < 2 or r["id"] > PLAIN + GAP]
    assert [r["id"] for r in kept] == [0, 1, *range(PLAIN + GAP + 1, PLAIN + GAP + 5)]
    assert lines == ['"id","name","doc"', *map(_csv_line, kept)]


def test_a_bad_line_after_the_first_block_is_named_by_its_line(tmp_path: Path) -> None:
    """Read block by block, an error still names the line in the file: by Arrow's row within
    the block (blank lines count as lines), or the block's lines when Arrow names no row."""
    rows = [json.dumps(_row(i)) for i in range(PLAIN)]
    for bad, message in (('{"id": "x"}', "line 23002: "), ('{"id": 1.5}', "lines ")):
        (tmp_path / "events.jsonl").write_text("\n".join([*rows, "", bad, "{}"]) + "\n")
        source = FilesSource(FilesSettings(url=tmp_path.as_uri()), {}, policy_for(tmp_path))
        table = next(t for t in source.catalog() if t.qualified_name == "events.jsonl")
        plan = ReadPlan(TableRef(None, "events.jsonl"), table.columns, table.columns)
        with pytest.raises(SourceError) as caught:
            list(source.read(plan, 10_000))
        assert str(caught.value).startswith(f"events.jsonl {message}"), str(caught.value)


def test_a_key_another_file_of_the_folder_starts_with_is_named_once(tmp_path: Path) -> None:
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "a.jsonl").write_text('{"id": 1}\n')
    (tmp_path / "events" / "b.jsonl").write_text('{"id": 2}\n')
    source = FilesSource(FilesSettings(url=tmp_path.as_uri()), {}, policy_for(tmp_path))
    table = next(t for t in source.catalog() if t.qualified_name == "events")
    # After discovery, b.jsonl starts with a key the template lacks: named once, not twice.
    (tmp_path / "events" / "b.jsonl").write_text('{"id": 2, "extra": 1}\n{"id": 3}\n')
    plan = ReadPlan(TableRef(None, "events"), table.columns, table.columns)
    assert [b.to_pylist() for b in source.read(plan, 100)] == [[{"id": 1}], [{"id": 2}, {"id": 3}]]
    assert source.warnings() == [
        "events/b.jsonl: column 'extra' is not in the template (events/a.jsonl has no such "
        "column); it was not read"
    ]


def test_a_key_only_null_in_the_first_block_says_so(tmp_path: Path) -> None:
    """Its type was unknown, so the template read it as string, and a later number failed
    "changed from string to number" although the file holds no string for it."""
    (tmp_path / "n.jsonl").write_text('{"a":1,"b":null}\n' * 80_000 + '{"a":2,"b":5}\n')
    source = FilesSource(FilesSettings(url=tmp_path.as_uri()), {}, policy_for(tmp_path))
    table = next(t for t in source.catalog() if t.qualified_name == "n.jsonl")
    plan = ReadPlan(TableRef(None, "n.jsonl"), table.columns, table.columns)
    with pytest.raises(SourceError) as caught:
        list(source.read(plan, 10_000))
    assert str(caught.value) == (
        "n.jsonl line 80001: JSON parse error: Column(/b) changed from string to number; "
        "column 'b' held only null in the first 1 MiB of n.jsonl, so its type is unknown and "
        "the template reads it as string: put a line with a value for it within the first "
        "1 MiB and list the templates again"
    )
