"""The files source delivers exactly the source's values or fails naming the file, the column
and the value: JSONL strings that look like timestamps, a folder's types unified only into one
that keeps every value, nested Parquet values as exact JSON, JSONL numbers a float64 would
change."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from egress.container import Container
from egress.domain.status import RunStatus
from egress.sources.files import FilesSettings, FilesSource
from egress.sources.files.jsonl import BLOCK_BYTES
from tests.support.factories import extract_once, sqlite_container
from tests.support.policy import policy_for


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    with sqlite_container(tmp_path) as container:
        yield container


def _types(folder: Path, policy_root: Path) -> dict[str, list[tuple[str, str]]]:
    source = FilesSource(FilesSettings(url=folder.as_uri()), {}, policy_for(policy_root))
    return {t.qualified_name: [(c.name, c.type) for c in t.columns] for t in source.catalog()}


def test_jsonl_strings_that_look_like_timestamps_stay_strings(c: Container, tmp_path: Path) -> None:
    """Arrow's JSON reader took them for timestamps: the offset was lost (08:00, no zone) and a
    date got a time. JSON has no timestamp type: a string is delivered as written."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ts.jsonl").write_text(
        '{"id":1,"at":"2026-01-31T10:00:00+02:00","day":"2026-01-31",'
        '"doc":{"at":"2026-01-31T10:00:00Z"}}\n'
    )
    assert _types(folder, tmp_path)["ts.jsonl"] == [
        ("id", "int64"),
        ("at", "string"),
        ("day", "string"),
        ("doc", "json"),
    ]
    settings = {"url": folder.as_uri()}
    run, data = extract_once(c, "files", settings, "ts.jsonl", "jsonl")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode() == (
        '{"id":1,"at":"2026-01-31T10:00:00+02:00","day":"2026-01-31",'
        '"doc":{"at":"2026-01-31T10:00:00Z"}}\n'
    )
    run, data = extract_once(c, "files", settings, "ts.jsonl", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines()[1] == (
        '1,"2026-01-31T10:00:00+02:00","2026-01-31","{""at"": ""2026-01-31T10:00:00Z""}"'
    )


def test_a_folder_is_unified_only_into_a_type_that_keeps_every_value(
    c: Container, tmp_path: Path
) -> None:
    """decimal + float64 was float64 (0.12345678901234567890 rounded); CSV 9007199254740993
    beside 1e5 was 9.007199254740992e+15."""
    folder = tmp_path / "in"
    for name in ("dec", "big", "small", "wide"):
        (folder / name).mkdir(parents=True)
    exact = Decimal("0.12345678901234567890")
    pq.write_table(pa.table({"v": pa.array([exact], pa.decimal128(38, 20))}), folder / "dec/a.pq")
    pq.write_table(pa.table({"v": pa.array([1.5])}), folder / "dec/b.pq")
    (folder / "big/a.csv").write_text("v\n9007199254740993\n")
    (folder / "big/b.csv").write_text("v\n1e5\n")
    pq.write_table(pa.table({"v": pa.array([2**31 - 1], pa.int32())}), folder / "small/a.pq")
    pq.write_table(pa.table({"v": pa.array([0.5])}), folder / "small/b.pq")
    pq.write_table(pa.table({"v": pa.array([1, 2**53 + 1], pa.int64())}), folder / "wide/a.pq")
    pq.write_table(pa.table({"v": pa.array([0.5])}), folder / "wide/b.pq")

    types = _types(folder, tmp_path)
    assert "dec" not in types  # no type holds both a decimal(38,20) and a float64
    assert types["big"] == [("v", "string")]  # a CSV column keeps its text
    assert types["small"] == [("v", "float64")]  # every int32 is a float64
    assert types["wide"] == [("v", "float64")]  # the read refuses an int64 beyond 2^53

    settings = {"url": folder.as_uri()}
    run, data = extract_once(c, "files", settings, "big", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines() == ['"v"', '"9007199254740993"', '"1e5"']
    run, data = extract_once(c, "files", settings, "small", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines() == ['"v"', "2147483647", "0.5"]
    run, data = extract_once(c, "files", settings, "wide", "csv")
    assert run.status is RunStatus.FAILED and data == b""
    assert run.error_message == (
        "wide/*: column 'v' holds the integer 9007199254740993, which float64 cannot hold"
        " without changing it"
    )


def test_nested_parquet_values_are_exact_json(c: Container, tmp_path: Path) -> None:
    """Binary was Python's repr ("b'\\x00\\xff'"), a timestamp Python's text, NaN the invalid
    JSON token NaN: each is now as Egress writes it at the top level."""
    folder = tmp_path / "in"
    folder.mkdir()
    doc = {
        "b": b"\x00\xff",
        "t": datetime(2026, 1, 1, 12, tzinfo=UTC),
        "d": Decimal("1.10"),
        "day": date(2026, 1, 31),
        "l": [float("nan"), 1.5, float("-inf"), None],
    }
    col = pa.array([doc, None])
    ids = pa.array([1, 2])
    kv = pa.array([[("k", b"\x01")], None], pa.map_(pa.string(), pa.binary()))
    pq.write_table(pa.table({"id": ids, "doc": col, "kv": kv}), folder / "n.parquet")
    settings = {"url": folder.as_uri()}
    text = (
        '{"b": "AP8=", "t": "2026-01-01T12:00:00.000000Z", "d": "1.10", "day": "2026-01-31",'
        ' "l": ["NaN", 1.5, "-Infinity", null]}'
    )

    run, data = extract_once(c, "files", settings, "n.parquet", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines() == [
        '"id","doc","kv"',
        f'1,"{text.replace(chr(34), chr(34) * 2)}","[[""k"", ""AQ==""]]"',
        "2,,",
    ]
    run, data = extract_once(c, "files", settings, "n.parquet", "jsonl")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines()[0] == (
        '{"id":1,"doc":{"b":"AP8=","t":"2026-01-01T12:00:00.000000Z","d":"1.10",'
        '"day":"2026-01-31","l":["NaN",1.5,"-Infinity",null]},"kv":[["k","AQ=="]]}'
    )
    run, data = extract_once(c, "files", settings, "n.parquet", "parquet")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert pq.read_table(io.BytesIO(data)).column("doc").to_pylist() == [text, None]


def test_jsonl_numbers_a_float_would_change_are_decimals_or_fail(
    c: Container, tmp_path: Path
) -> None:
    """Arrow reads a JSON number with a point as float64: 123.456789012345678901 was
    123.45678901234568, 9007199254740993 beside 1.5 was 9007199254740992. Seen in the first
    1 MiB, the column is a decimal; after it (or nested), the run fails naming the number."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "n.jsonl").write_text(
        '{"v":123.456789012345678901,"w":1.10,"x":9007199254740993,"y":99999999999999999999}\n'
        '{"v":1.5,"w":2,"x":1.5,"y":1}\n'
    )
    assert _types(folder, tmp_path)["n.jsonl"] == [
        ("v", "decimal(38,18)"),
        ("w", "float64"),  # 1.10 is the float64 1.1: the same number
        ("x", "decimal(38,1)"),
        ("y", "decimal(38,0)"),
    ]
    settings = {"url": folder.as_uri()}
    run, data = extract_once(c, "files", settings, "n.jsonl", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines() == [
        '"v","w","x","y"',
        "123.456789012345678901,1.1,9007199254740993.0,99999999999999999999",
        "1.500000000000000000,2,1.5,1",
    ]

    plain = json.dumps({"v": 0.5, "doc": {"x": [1.25]}}) + "\n"
    lines = [plain] * (BLOCK_BYTES // len(plain) + 10)
    lines.append('{"v": 0.25, "doc": {"x": [1.25, 0.1000000000000000055511151231257827]}}\n')
    (folder / "late.jsonl").write_text("".join(lines))
    run, data = extract_once(c, "files", settings, "late.jsonl", "csv")
    assert run.status is RunStatus.FAILED and data == b""
    assert run.error_message == (
        f"late.jsonl line {len(lines)}: column 'doc' holds 0.1000000000000000055511151231257827,"
        " which float64 cannot hold without changing it (0.1); a JSONL column is a decimal"
        " only when the file's first 1 MiB needs one"
    )
    lines[-1] = '{"v": 12345678.9012345678, "doc": {"x": [1.25]}}\n'
    (folder / "late.jsonl").write_text("".join(lines))
    run, data = extract_once(c, "files", settings, "late.jsonl", "parquet")
    assert run.status is RunStatus.FAILED and data == b""
    assert run.error_message == (
        f"late.jsonl line {len(lines)}: column 'v' holds 12345678.9012345678, which float64"
        " cannot hold without changing it (12345678.901234567); a JSONL column is a decimal"
        " only when the file's first 1 MiB needs one"
    )
