"""CSV values Arrow would read into another value, in the first 1 MiB (the column keeps its
text) and after it (the run fails naming the line): hex integers, floats beyond float64's
range, spaces around a number, nanosecond timestamps; a one-column file's empty lines (its
NULLs); a row longer than a block."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from egress.container import Container
from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.plan import ReadPlan
from egress.domain.status import RunStatus
from egress.sources.base import SourceError
from egress.sources.files import FilesSettings, FilesSource
from tests.support.factories import extract_once, sqlite_container
from tests.support.policy import policy_for

PAST_FIRST_BLOCK = 120_000  # rows of ~25 bytes: past the first 1 MiB a type is inferred from


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    with sqlite_container(tmp_path) as container:
        yield container


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "in"
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content)
    return folder


def _late(first: str, later: str) -> str:
    """Rows of ``first`` past the first block, then one row of ``later`` (line 120002)."""
    body = "".join(f"{i},{first}\n" for i in range(PAST_FIRST_BLOCK))
    return f"id,v\n{body}{PAST_FIRST_BLOCK},{later}\n"


def _types(folder: Path, policy_root: Path) -> dict[str, list[tuple[str, str]]]:
    source = FilesSource(FilesSettings(url=folder.as_uri()), {}, policy_for(policy_root))
    return {t.qualified_name: [(c.name, c.type) for c in t.columns] for t in source.catalog()}


def test_hex_text_is_not_read_as_an_integer(c: Container, tmp_path: Path) -> None:
    """Arrow's integer parser takes 0x hex: two codes became 16 and a hash became -1."""
    folder = _folder(
        tmp_path,
        {
            "codes.csv": "id,v\n1,0x10\n2,0x0010\n3,0xFFFFFFFFFFFFFFFF\n",
            "f/a.csv": "v\n0x10\n",
            "f/b.csv": "v\n5\n",
        },
    )
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "codes.csv", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines()[1:] == [
        '1,"0x10"',
        '2,"0x0010"',
        '3,"0xFFFFFFFFFFFFFFFF"',
    ]
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "f", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines()[1:] == ['"0x10"', '"5"']


@pytest.mark.parametrize(
    ("first", "later", "message"),
    [
        (
            "123456789012345678",
            "0xFFFFFFFFFFFFFFFF",
            "late.csv line 120002: column 'v' holds '0xFFFFFFFFFFFFFFFF', which is not an "
            "integer in decimal digits; set the column's type (string keeps the text) with a "
            "custom template's columnTypes",
        ),
        (
            "123456789012345678",
            "99999999999999999999",
            "late.csv line 120002: column 'v' holds '99999999999999999999', which int64 cannot "
            "read; set the column's type (string keeps the text) with a custom template's "
            "columnTypes",
        ),
        (
            "1.5e3",
            "1e400",
            "late.csv line 120002: column 'v' holds '1e400', which float64 cannot hold without "
            "changing it; set the column's type (string keeps the text) with a custom "
            "template's columnTypes",
        ),
        (
            "1.5e3",
            "1e-400",
            "late.csv line 120002: column 'v' holds '1e-400', which float64 cannot hold without "
            "changing it; set the column's type (string keeps the text) with a custom "
            "template's columnTypes",
        ),
        (
            "1.5e3",
            "1.5e-310",
            "late.csv line 120002: column 'v' holds '1.5e-310', which float64 cannot hold "
            "without changing it; set the column's type (string keeps the text) with a custom "
            "template's columnTypes",
        ),
    ],
)
def test_a_later_number_the_type_would_change_fails_naming_the_line(
    c: Container, tmp_path: Path, first: str, later: str, message: str
) -> None:
    """After the first block, 0xFFFFFFFFFFFFFFFF was -1, 1e400 inf and 1e-400 0: COMPLETED."""
    folder = _folder(tmp_path, {"late.csv": _late(first, later)})
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "late.csv", "csv")
    assert run.status is RunStatus.FAILED, data.decode()[-40:]
    assert run.error_message == message


def test_later_numbers_that_keep_their_value_are_read(tmp_path: Path) -> None:
    """The text is checked, not refused: spaces (Arrow trims them), a minus zero, infinities by
    name; and the filter compares the numbers, not their text."""
    body = "".join(f"{i},{i},{i % 7}.5e3\n" for i in range(PAST_FIRST_BLOCK))
    late = f'{PAST_FIRST_BLOCK}, -0 ,inf\n{PAST_FIRST_BLOCK + 1},"\t42",-Infinity\n'
    folder = _folder(tmp_path, {"ok.csv": f"id,n,f\n{body}{late}"})
    source = FilesSource(FilesSettings(url=folder.as_uri()), {}, policy_for(tmp_path))
    (table,) = [t for t in source.catalog() if t.qualified_name == "ok.csv"]
    assert [c.type for c in table.columns] == ["int64", "int64", "float64"]
    where = f"n >= 0 AND id >= {PAST_FIRST_BLOCK} AND f < 1e300"
    plan = ReadPlan(TableRef(None, "ok.csv"), table.columns, table.columns, where=where)
    rows = pa.Table.from_batches(list(source.read(plan, 1000))).to_pylist()
    assert rows == [{"id": 120001, "n": 42, "f": float("-inf")}]


def test_floats_beyond_float64_range_keep_their_text(c: Container, tmp_path: Path) -> None:
    """1e400 was inf, 1e-400 was 0 and a subnormal lost digits (1.2347e-320)."""
    folder = _folder(
        tmp_path, {"m.csv": "id,v\n1,1e400\n2,1e-400\n3,1.23456789012345e-320\n4,1.5\n"}
    )
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "m.csv", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines()[1:] == [
        '1,"1e400"',
        '2,"1e-400"',
        '3,"1.23456789012345e-320"',
        '4,"1.5"',
    ]


def test_spaces_around_a_number_keep_its_text(c: Container, tmp_path: Path) -> None:
    """Arrow trims them, the leading-zero and scale rules did not: ' 007' was 7, '0.10 ' 0.1."""
    folder = _folder(tmp_path, {"z.csv": 'id,zip,amount\n1, 007,0.10 \n2,"  0042",2.5\n3,\t7,1\n'})
    types = _types(folder, tmp_path)
    assert types["z.csv"] == [("id", "int64"), ("zip", "string"), ("amount", "string")]
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "z.csv", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines()[1:] == [
        '1," 007","0.10 "',
        '2,"  0042","2.5"',
        '3,"\t7","1"',
    ]


def test_one_column_csv_keeps_its_null_rows(c: Container, tmp_path: Path) -> None:
    """Egress writes a one-column NULL as an empty line; reading it back dropped the row."""
    source = tmp_path / "in" / "src"
    source.mkdir(parents=True)
    pq.write_table(pa.table({"v": pa.array([1, None, 3])}), source / "one.parquet")
    run, written = extract_once(c, "files", {"url": source.as_uri()}, "one.parquet", "csv")
    assert written == b'"v"\n1\n\n3\n'
    back = _folder(
        tmp_path,
        {
            "back/one.csv": written.decode(),
            "back/trailing.csv": "v\n1\n2\n\n",
            "back/unended.csv": "v\n1\n2",
            "back/two.csv": "id,v\n1,a\n\n2,b\n",
        },
    )
    url = {"url": (back / "back").as_uri()}
    run, data = extract_once(c, "files", url, "one.csv", "jsonl")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert run.record_count == 3
    assert data.decode() == '{"v":1}\n{"v":null}\n{"v":3}\n'
    run, data = extract_once(c, "files", url, "trailing.csv", "jsonl")
    assert data.decode() == '{"v":1}\n{"v":2}\n{"v":null}\n'
    run, data = extract_once(c, "files", url, "unended.csv", "jsonl")
    assert data.decode() == '{"v":1}\n{"v":2}\n'
    run, data = extract_once(c, "files", url, "two.csv", "jsonl")  # a blank line is no row
    assert data.decode() == '{"id":1,"v":"a"}\n{"id":2,"v":"b"}\n'


def test_nanosecond_timestamps_in_the_first_block_keep_their_text(
    c: Container, tmp_path: Path
) -> None:
    """Typed timestamp (microseconds), every run failed at line 2 on its nanoseconds."""
    folder = _folder(
        tmp_path,
        {
            "ns.csv": "id,at\n1,2026-01-31 10:00:00.123456789\n",
            "ms.csv": "id,at\n1,2026-01-31 10:00:00.123\n",
        },
    )
    types = _types(folder, tmp_path)
    assert types["ns.csv"] == [("id", "int64"), ("at", "string")]
    assert types["ms.csv"] == [("id", "int64"), ("at", "timestamp")]
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "ns.csv", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines()[1] == '1,"2026-01-31 10:00:00.123456789"'


def test_a_row_longer_than_a_block_is_explained(tmp_path: Path) -> None:
    """Arrow's "straddling object … (try to increase block size?)" names no setting there is."""
    big = "x" * (2 << 20)
    folder = _folder(tmp_path, {"big.csv": f"id,v\n1,{big}\n2,y\n"})
    source = FilesSource(FilesSettings(url=folder.as_uri()), {}, policy_for(tmp_path))
    (table,) = [t for t in source.catalog() if t.qualified_name == "big.csv"]
    assert table.error == (
        "big.csv: a row is longer than 1 MiB, the block a CSV file is read in, so the file "
        "cannot be read; keep each row (with its quoted fields) under 1 MiB, or write such "
        "values in Parquet or JSONL"
    )


def _typed_read(
    folder: Path, root: Path, name: str, types: dict[str, str], where: str | None
) -> list[dict[str, object]]:
    source = FilesSource(FilesSettings(url=folder.as_uri()), {}, policy_for(root))
    columns = [ColumnInfo(n, t) for n, t in types.items()]
    plan = ReadPlan(TableRef(None, name), columns, columns, where=where)
    rows: list[dict[str, object]] = pa.Table.from_batches(list(source.read(plan, 1000))).to_pylist()
    return rows


def test_a_folder_of_small_files_is_parsed_exactly_and_fails_naming_the_file(
    tmp_path: Path,
) -> None:
    """Small files' batches are parsed together: the rows, a filter's result and a refused
    value's file and line must still be each file's own."""
    files = {f"f/{i:03d}.csv": f"id,v\n{2 * i},{i}\n{2 * i + 1},-{i}.5e1\n" for i in range(40)}
    folder = _folder(tmp_path, files)
    types = {"id": "int64", "v": "float64"}
    rows = _typed_read(folder, tmp_path, "f", types, None)
    assert rows == [
        {"id": 2 * i + k, "v": [float(i), -10.0 * i - 5][k]} for i in range(40) for k in (0, 1)
    ]
    assert _typed_read(folder, tmp_path, "f", types, "v < -380") == [
        {"id": 77, "v": -385.0},
        {"id": 79, "v": -395.0},
    ]
    (folder / "f/017.csv").write_text("id,v\n34,17\n35,1e400\n")
    with pytest.raises(SourceError) as refused:
        _typed_read(folder, tmp_path, "f", types, None)
    assert str(refused.value) == (
        "f/017.csv line 3: column 'v' holds '1e400', which float64 cannot hold without "
        "changing it; set the column's type (string keeps the text) with a custom "
        "template's columnTypes"
    )
    (folder / "f/017.csv").write_text("id,v\n34,17\n35,1\n")
    (folder / "f/031.csv").write_text("id,v\n62,1\n0x3F,1\n")
    with pytest.raises(SourceError) as refused:
        _typed_read(folder, tmp_path, "f", types, "v > 0")
    assert str(refused.value).startswith(
        "f/031.csv line 3: column 'id' holds '0x3F', which is not an integer in decimal digits"
    )


def test_padded_dates_and_times_in_the_first_block_keep_their_text(
    c: Container, tmp_path: Path
) -> None:
    """Arrow trims spaces and tabs around a date or time as around a number: ' 2026-01-02' was
    the date 2026-01-02 and ' 10:00:00' the time 10:00:00, in COMPLETED runs."""
    folder = _folder(
        tmp_path,
        {
            "d.csv": "id,v\n1,2026-01-01\n2, 2026-01-02\n3,2026-01-03 \n",
            "tab.csv": "id,v\n1,\t2026-01-02\n",
            "t.csv": "id,v\n1, 10:00:00\n",
            "ts.csv": "id,v\n1,2026-01-01 10:00:00\t\n",
            "plain.csv": "id,d,t,ts\n1,2026-01-02,10:00:00,2026-01-01 10:00:00\n",
        },
    )
    types = _types(folder, tmp_path)
    for name in ("d.csv", "tab.csv", "t.csv", "ts.csv"):
        assert types[name] == [("id", "int64"), ("v", "string")], name
    assert [t for _, t in types["plain.csv"]] == ["int64", "date", "time", "timestamp"]
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "d.csv", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines()[1:] == [
        '1,"2026-01-01"',
        '2," 2026-01-02"',
        '3,"2026-01-03 "',
    ]
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "t.csv", "jsonl")
    assert data.decode() == '{"id":1,"v":" 10:00:00"}\n'


def test_booleans_are_true_or_false_and_1_or_0_is_a_number(c: Container, tmp_path: Path) -> None:
    """Arrow reads 1 and 0 as booleans: a column of true,1,0,FALSE,True was delivered
    true,true,false,false,true."""
    folder = _folder(
        tmp_path,
        {
            "mixed.csv": "id,v\n1,true\n2,1\n3,0\n4,FALSE\n5,True\n",
            "words.csv": "id,v\n1,true\n2,FALSE\n3,True\n4,false\n5,TRUE\n6,False\n",
            "digits.csv": "id,v\n1,1\n2,0\n",
        },
    )
    types = _types(folder, tmp_path)
    assert types["mixed.csv"] == [("id", "int64"), ("v", "string")]
    assert types["words.csv"] == [("id", "int64"), ("v", "boolean")]
    assert types["digits.csv"] == [("id", "int64"), ("v", "int64")]
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "mixed.csv", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines()[1:] == ['1,"true"', '2,"1"', '3,"0"', '4,"FALSE"', '5,"True"']
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "words.csv", "csv")
    assert data.decode().splitlines()[1:] == [
        "1,true",
        "2,false",
        "3,true",
        "4,false",
        "5,true",
        "6,false",
    ]


_SET_TYPE = "; set the column's type (string keeps the text) with a custom template's columnTypes"


@pytest.mark.parametrize(
    ("first", "later", "why"),
    [
        ("true", "1", "boolean cannot read"),
        ("false", "0", "boolean cannot read"),
        ("2026-01-01", "2026-02-29", "date cannot read"),
        ("2026-01-01 10:00:00Z", "2026-01-01 10:00:00", "timestamptz cannot read"),
        ("2026-01-01 10:00:00", " 2026-01-01 10:00:00", "timestamp cannot read"),
        ("10:00:00", "24:00:00", "time cannot read"),
        ("1.25", "1.505", "decimal(38,2) cannot read"),
    ],
)
def test_a_later_value_the_type_cannot_read_fails_naming_the_line(
    c: Container, tmp_path: Path, first: str, later: str, why: str
) -> None:
    """Arrow read a later 1 in a boolean column as true (COMPLETED), and its failures were its
    own text: "In CSV column #1: Row #120002: CSV conversion error to date32[day]: invalid
    value '2026-02-29'", "Rescaling Decimal value would cause data loss" (no value)."""
    folder = _folder(tmp_path, {"late.csv": _late(first, later)})
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "late.csv", "jsonl")
    assert run.status is RunStatus.FAILED, data.decode()[-60:]
    assert run.error_message == f"late.csv line 120002: column 'v' holds {later!r}, which {why}" + (
        _SET_TYPE
    )


def test_later_spellings_of_the_same_value_are_read(tmp_path: Path) -> None:
    """What the README documents as read although the text differs: spaces and tabs around a
    number or time (Arrow refuses them around a timestamp); a decimal's sign, missing digits,
    leading zero and exponent; a timestamp's T and missing seconds; TRUE."""
    body = "".join(f"{i},1.25,2026-01-01 10:00:00,10:00:00,true\n" for i in range(PAST_FIRST_BLOCK))
    late = f"{PAST_FIRST_BLOCK},+1.50,2026-01-02T10:00,10:30,TRUE\n"
    late += f"{PAST_FIRST_BLOCK + 1},.5,2026-01-03,10:00:00.5,False\n"
    late += f"{PAST_FIRST_BLOCK + 2},01.5,2026-01-04 10:00:00,\t10:00:00,\n"
    late += f"{PAST_FIRST_BLOCK + 3},1e1,,,\n{PAST_FIRST_BLOCK + 4},-0.00,,,\n"
    late += f"{PAST_FIRST_BLOCK + 5}, 1.50 ,,,\n"
    folder = _folder(tmp_path, {"ok.csv": f"id,d,ts,t,b\n{body}{late}"})
    source = FilesSource(FilesSettings(url=folder.as_uri()), {}, policy_for(tmp_path))
    (table,) = [t for t in source.catalog() if t.qualified_name == "ok.csv"]
    types = [c.type for c in table.columns]
    assert types == ["int64", "decimal(38,2)", "timestamp", "time", "boolean"]
    plan = ReadPlan(
        TableRef(None, "ok.csv"), table.columns, table.columns, where=f"id >= {PAST_FIRST_BLOCK}"
    )
    rows = pa.Table.from_batches(list(source.read(plan, 1000))).to_pylist()
    assert [(str(r["d"]), str(r["ts"]), str(r["t"]), r["b"]) for r in rows] == [
        ("1.50", "2026-01-02 10:00:00", "10:30:00", True),
        ("0.50", "2026-01-03 00:00:00", "10:00:00.500000", False),
        ("1.50", "2026-01-04 10:00:00", "10:00:00", None),
        ("10.00", "None", "None", None),
        ("0.00", "None", "None", None),
        ("1.50", "None", "None", None),
    ]


def test_a_csv_that_is_not_utf8_fails_naming_the_file_and_line(
    c: Container, tmp_path: Path
) -> None:
    """Latin-1 text in the first block made the column binary: a COMPLETED run delivered
    "UGFyaXM=" for Paris. After it, the run failed with Arrow's own text."""
    latin = "Zürich".encode("latin-1")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "early.csv").write_bytes(b"id,city\n1,Paris\n2," + latin + b"\n")
    lines = b"".join(b"%d,Paris\n" % i for i in range(PAST_FIRST_BLOCK))
    (folder / "late.csv").write_bytes(b"id,city\n" + lines + b"120000," + latin + b"\n")
    fix = "is not UTF-8 text; a CSV file must be UTF-8: convert it (for example iconv -f latin1"
    fix += " -t utf-8) and list the templates again"
    source = FilesSource(FilesSettings(url=folder.as_uri()), {}, policy_for(tmp_path))
    errors = {t.qualified_name: t.error for t in source.catalog()}
    assert errors["early.csv"] == f"early.csv line 3: column 'city' {fix}"
    assert errors["late.csv"] is None
    with pytest.raises(SourceError) as refused:
        _typed_read(folder, tmp_path, "early.csv", {"id": "int64", "city": "string"}, None)
    assert str(refused.value) == f"early.csv line 3: column 'city' {fix}"
    run, _ = extract_once(c, "files", {"url": folder.as_uri()}, "late.csv", "csv")
    assert run.status is RunStatus.FAILED
    assert run.error_message == f"late.csv line 120002: column 'city' {fix}"
