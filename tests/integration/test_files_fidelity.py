"""The files source delivers exactly the source's values or fails naming the file, the column
and the value: JSONL strings that look like timestamps, a folder's types unified only into one
that keeps every value, nested Parquet values as exact JSON, JSONL numbers a float64 would
change."""

from __future__ import annotations

import io
import json
import uuid
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


def _parquet_folder(tmp_path: Path, files: dict[str, pa.Table]) -> Path:
    folder = tmp_path / "in"
    for name, table in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / name)
    return folder


def test_a_folders_nested_columns_take_every_files_type(c: Container, tmp_path: Path) -> None:
    """They took the first file's: b's nested key y was dropped without a word, and a list of
    floats after a list of integers failed ("Float value 0.500000 was truncated")."""
    folder = _parquet_folder(
        tmp_path,
        {
            "ev/a.parquet": pa.table({"id": [1], "doc": pa.array([{"x": 1}])}),
            "ev/b.parquet": pa.table({"id": [2], "doc": pa.array([{"x": 2, "y": "kept"}])}),
            "n/a.parquet": pa.table({"v": pa.array([[1]], pa.list_(pa.int64()))}),
            "n/b.parquet": pa.table({"v": pa.array([[0.5]], pa.list_(pa.float64()))}),
        },
    )
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "ev", "jsonl")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode() == ('{"id":1,"doc":{"x":1,"y":null}}\n{"id":2,"doc":{"x":2,"y":"kept"}}\n')
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "n", "jsonl")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode() == '{"v":[1.0]}\n{"v":[0.5]}\n'


def test_a_folder_of_integers_and_decimals_has_room_for_both(c: Container, tmp_path: Path) -> None:
    """Arrow unifies int64 and decimal(10,1) as decimal(19,1), one integer digit short of
    int64's: every run failed ("Precision is not great enough … at least 20")."""
    folder = _parquet_folder(
        tmp_path,
        {
            "d/a.parquet": pa.table({"v": pa.array([1, -(2**63)], pa.int64())}),
            "d/b.parquet": pa.table({"v": pa.array([Decimal("1.5")], pa.decimal128(10, 1))}),
        },
    )
    assert _types(folder, tmp_path)["d"] == [("v", "decimal(20,1)")]
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "d", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines()[1:] == ["1.0", "-9223372036854775808.0", "1.5"]


def test_extreme_parquet_timestamps_and_dates_fail_the_run(c: Container, tmp_path: Path) -> None:
    """The sinks write a timestamp at int64's extremes (a date at int32's) as PostgreSQL's
    infinity: a file's sentinel value was delivered as "infinity"."""
    folder = _parquet_folder(
        tmp_path,
        {
            "x.parquet": pa.table(
                {"id": [1, 2], "at": pa.array([5, 2**63 - 1], pa.timestamp("us"))}
            ),
            "y.parquet": pa.table({"day": pa.array([1, -(2**31)], pa.date32())}),
        },
    )
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "x.parquet", "csv")
    assert b"infinity" not in data
    assert run.status is RunStatus.FAILED
    assert run.error_message == (
        "x.parquet: column 'at' holds 9223372036854775807 (timestamp[us]), the largest "
        "timestamp[us] value, which Egress writes only for PostgreSQL's infinity; filter it "
        "out with a whereClause"
    )
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "y.parquet", "jsonl")
    assert run.status is RunStatus.FAILED
    assert run.error_message == (
        "y.parquet: column 'day' holds -2147483648 (date32[day]), the smallest date32[day] "
        "value, which Egress writes only for PostgreSQL's -infinity; filter it out with a "
        "whereClause"
    )


def test_parquet_canonical_extension_columns(c: Container, tmp_path: Path) -> None:
    """arrow.uuid (a BaseExtensionType, not an ExtensionType) was typed string: the run failed
    "Invalid UTF8 payload", or wrote 16 ASCII bytes as text. A UUID is its canonical text, as
    PostgreSQL's uuid is delivered; arrow.bool8 a boolean."""
    u = uuid.UUID("8f0e4b2a-9c1d-4e5f-a6b7-c8d9e0f1a2b3")
    ascii_bytes = b"0123456789abcdef"
    table = pa.table(
        {
            "id": [1, 2, 3],
            "v": pa.array([u.bytes, ascii_bytes, None], pa.uuid()),
            "b": pa.array([1, 0, None], pa.bool8()),
        }
    )
    folder = _parquet_folder(tmp_path, {"u.parquet": table})
    assert _types(folder, tmp_path)["u.parquet"] == [
        ("id", "int64"),
        ("v", "uuid"),
        ("b", "boolean"),
    ]
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "u.parquet", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines()[1:] == [
        '1,"8f0e4b2a-9c1d-4e5f-a6b7-c8d9e0f1a2b3",true',
        f'2,"{uuid.UUID(bytes=ascii_bytes)}",false',
        "3,,",
    ]
