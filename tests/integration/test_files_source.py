"""The `files` connection type: discovery of files and folders, type fidelity from Parquet, CSV
and JSONL (gzip too) into every output format, malformed files, and a bucket on a real S3
server (moto)."""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import obstore
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from egress.api.native.presenters import element_tree
from egress.container import Container
from egress.domain.catalog import TableInfo, TableRef
from egress.domain.paging import PageRequest
from egress.domain.plan import ReadPlan
from egress.domain.status import RunStatus
from egress.sources import SourceError
from egress.sources.files import FilesSettings, FilesSource
from tests.support.factories import extract_once, sqlite_container, submitted_configuration
from tests.support.policy import policy_for
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server

TRICKY = 'héllo, "wörld"\nsecond line 🎉'
EDGE_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("flag", pa.bool_()),
        ("small", pa.int16()),
        ("medium", pa.int32()),
        ("big", pa.int64()),
        ("single", pa.float32()),
        ("double", pa.float64()),
        ("amount", pa.decimal128(12, 2)),
        ("text", pa.string()),
        ("day", pa.date32()),
        ("clock", pa.time64("us")),
        ("at", pa.timestamp("us")),
        ("at_tz", pa.timestamp("us", tz="UTC")),
        ("blob", pa.binary()),
        ("doc", pa.struct([("k", pa.string()), ("n", pa.list_(pa.int64()))])),
    ]
)
EDGE_ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "flag": True,
        "small": -32768,
        "medium": 2147483647,
        "big": 9223372036854775807,
        "single": 1.5,
        "double": -2.25e100,
        "amount": Decimal("-1234567890.12"),
        "text": TRICKY,
        "day": date(1, 1, 1),
        "clock": time(23, 59, 59, 999999),
        "at": datetime(2026, 5, 28, 14, 0, 0, 123456),
        "at_tz": datetime(2026, 5, 28, 16, 0, tzinfo=UTC),
        "blob": b"\x00\x01\xff",
        "doc": {"k": "v", "n": [1, 2]},
    },
    {
        "id": 2,
        "flag": False,
        "small": 32767,
        "medium": -2147483648,
        "big": -9223372036854775808,
        "single": 0.0,
        "double": 5e-324,
        "amount": Decimal("0.00"),
        "text": "",
        "day": date(9999, 12, 31),
        "clock": time(0, 0),
        "at": datetime(1970, 1, 1),
        "at_tz": datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        "blob": b"",
        "doc": {"k": "", "n": []},
    },
    {"id": 3, **{name: None for name in EDGE_SCHEMA.names if name != "id"}},
]


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


# How each output format renders each column (README "Output formats"), decoded back.
_JSONL_DECODE: dict[str, Callable[[Any], Any]] = {
    "amount": Decimal,
    "day": date.fromisoformat,
    "clock": time.fromisoformat,
    "at": _ts,
    "at_tz": _ts,
    "blob": base64.b64decode,
    "doc": lambda v: v,
}
_CSV_DECODE: dict[str, Callable[[str], Any]] = {
    **_JSONL_DECODE,
    "id": int,
    "flag": lambda v: v == "true",
    "small": int,
    "medium": int,
    "big": int,
    "single": float,
    "double": float,
    "doc": json.loads,
}


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    with sqlite_container(tmp_path) as container:
        yield container


def _decode_row(row: dict[str, Any], decoders: dict[str, Callable[[Any], Any]]) -> dict[str, Any]:
    return {k: None if v is None else decoders.get(k, lambda x: x)(v) for k, v in row.items()}


def _csv_rows(data: bytes) -> dict[int, dict[str, Any]]:
    rows = {}
    for raw in csv.DictReader(io.StringIO(data.decode())):
        # NULL is an empty field; the empty string is written "" (checked on the raw text).
        decoded = {k: (None if v == "" else v) for k, v in raw.items()}
        rows[int(raw["id"])] = _decode_row(decoded, _CSV_DECODE)
    return rows


def test_parquet_edge_values_survive_every_output_format(c: Container, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(EDGE_ROWS, schema=EDGE_SCHEMA), folder / "edge.parquet")
    settings = {"url": folder.as_uri()}
    expected = {r["id"]: r for r in EDGE_ROWS}

    run, data = extract_once(c, "files", settings, "edge.parquet", "parquet")
    assert run.status is RunStatus.COMPLETED and run.record_count == 3, run.error_message
    table = pq.read_table(io.BytesIO(data))
    got = {r["id"]: r for r in table.to_pylist()}
    assert str(table.schema.field("doc").type) == "string"  # nested values become JSON text
    for i, want in expected.items():
        doc = got[i].pop("doc")
        assert got[i] == {k: v for k, v in want.items() if k != "doc"}
        assert (json.loads(doc) if doc is not None else None) == want["doc"]

    _run, data = extract_once(c, "files", settings, "edge.parquet", "jsonl")
    got = {
        r["id"]: _decode_row(r, _JSONL_DECODE) for r in map(json.loads, data.decode().splitlines())
    }
    assert got == expected

    _run, data = extract_once(c, "files", settings, "edge.parquet", "csv")
    # csv.DictReader reads "" and an empty field alike: the raw line keeps them apart.
    assert _csv_rows(data) == {
        i: {**r, **({"text": None, "blob": None} if i == 2 else {})} for i, r in expected.items()
    }
    row_two = next(line for line in data.decode().splitlines() if line.startswith("2,"))
    # Dates are quoted text (so PostgreSQL's "infinity" can be one, issue 11).
    assert ',"","9999-12-31",' in row_two and 'Z","",' in row_two
    assert data.decode().splitlines()[-1] == "3" + "," * 14


def test_csv_and_jsonl_sources_plain_and_gzip(c: Container, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    text = (
        "id,name,price,day,at,at_tz,ok\n"
        f'1,"{TRICKY.replace(chr(34), chr(34) * 2)}",10.5,2026-01-31,2026-01-31 23:59:59,'
        "2026-01-31T10:00:00Z,true\n"
        '2,"",0.25,0001-01-01,1970-01-01 00:00:00,1970-01-01T00:00:00Z,false\n'
        "3,,,,,,\n"
    )
    (folder / "plain.csv").write_text(text)
    (folder / "zipped.csv.gz").write_bytes(gzip.compress(text.encode()))
    lines = [
        {"id": 1, "name": TRICKY, "n": 2.5, "tags": {"a": [1, 2]}, "ok": True},
        {"id": 2, "name": "", "n": -1.0, "tags": None, "ok": False},
        {"id": 3},
    ]
    jsonl = "".join(json.dumps(r) + "\n" for r in lines)
    (folder / "events.jsonl").write_text(jsonl)
    (folder / "events2.jsonl.gz").write_bytes(gzip.compress(jsonl.encode()))
    settings = {"url": folder.as_uri()}

    for name in ("plain.csv", "zipped.csv.gz"):
        run, data = extract_once(c, "files", settings, name, "jsonl")
        assert run.status is RunStatus.COMPLETED and run.record_count == 3, run.error_message
        rows = [json.loads(line) for line in data.decode().splitlines()]
        assert rows == [
            {
                "id": 1,
                "name": TRICKY,
                "price": "10.50",  # a decimal with the column's scale, never a float
                "day": "2026-01-31",
                "at": "2026-01-31T23:59:59.000000",
                "at_tz": "2026-01-31T10:00:00.000000Z",
                "ok": True,
            },
            {
                "id": 2,
                "name": "",
                "price": "0.25",
                "day": "0001-01-01",
                "at": "1970-01-01T00:00:00.000000",
                "at_tz": "1970-01-01T00:00:00.000000Z",
                "ok": False,
            },
            {"id": 3, **dict.fromkeys(["name", "price", "day", "at", "at_tz", "ok"])},
        ]
    for name in ("events.jsonl", "events2.jsonl.gz"):
        run, data = extract_once(c, "files", settings, name, "csv")
        assert run.status is RunStatus.COMPLETED and run.record_count == 3, run.error_message
        assert data.decode() == (
            '"id","name","n","tags","ok"\n'
            f'1,"{TRICKY.replace(chr(34), chr(34) * 2)}",2.5,"{{""a"": [1, 2]}}",true\n'
            '2,"",-1,,false\n'
            "3,,,,\n"
        )


def _names(tables: list[TableInfo]) -> dict[str, str]:
    return {t.qualified_name: t.kind for t in tables}


def test_discovery_files_folders_and_what_is_ignored(c: Container, tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "sales").mkdir(parents=True)
    (root / "mixed").mkdir()
    (root / "sales" / "_staging").mkdir()
    jan = pa.table({"id": pa.array([1, 2], pa.int32()), "region": ["EU", "US"]})
    feb = pa.table({"id": pa.array([3], pa.int64()), "region": ["EU"]})  # widens int32
    pq.write_table(jan, root / "sales" / "2026-01.parquet")
    pq.write_table(feb, root / "sales" / "2026-02.parquet")
    pq.write_table(feb, root / "sales" / "_staging" / "partial.parquet")
    (root / "sales" / "README.md").write_text("not data")
    (root / "sales" / ".2026-03.parquet").write_bytes(b"half-written")
    (root / "mixed" / "a.csv").write_text("id,x\n1,2\n")
    (root / "mixed" / "b.csv").write_text("id,y\n1,2\n")  # other columns: no folder dataset
    (root / "top.jsonl").write_text('{"id": 1}\n')
    (root / "broken").mkdir()
    (root / "broken" / "good.csv").write_text("id\n1\n")
    (root / "broken" / "bad.parquet").write_bytes(b"not parquet at all")

    source = FilesSource(FilesSettings(url=root.as_uri()), {}, policy_for(tmp_path))
    tables = source.catalog()
    assert _names(tables) == {
        "broken/bad.parquet": "file",
        "broken/good.csv": "file",
        "mixed/a.csv": "file",
        "mixed/b.csv": "file",
        "sales/2026-01.parquet": "file",
        "sales/2026-02.parquet": "file",
        "top.jsonl": "file",
        "sales": "folder",
        ".": "folder",
    }
    sales = next(t for t in tables if t.qualified_name == "sales")
    assert [(col.name, col.type) for col in sales.columns] == [
        ("id", "int64"),
        ("region", "string"),
    ]
    plan = ReadPlan(TableRef(None, "sales"), sales.columns, sales.columns, where="region = 'EU'")
    assert [r for b in source.read(plan, 100) for r in b.to_pylist()] == [
        {"id": 1, "region": "EU"},
        {"id": 3, "region": "EU"},
    ]

    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, "files", "files", {"url": root.as_uri()}, None)
    tree = element_tree(conn.id, c.services.catalog.discover(ws, conn.id))
    assert [(f["elementType"], f["name"]) for f in tree] == [
        ("FOLDER", "broken"),
        ("FOLDER", "mixed"),
        ("FOLDER", "sales"),
        ("FOLDER", "."),
    ]
    bad = tree[0]["children"][0]
    assert (bad["path"], bad["children"]) == ("broken/bad.parquet", [])
    assert bad["error"].startswith("broken/bad.parquet: Parquet magic bytes not found")
    assert "error" not in tree[0]["children"][1]
    sales_files = tree[2]["children"]
    assert [(f["elementType"], f["path"]) for f in sales_files] == [
        ("FILE", "sales/2026-01.parquet"),
        ("FILE", "sales/2026-02.parquet"),
    ]
    assert [col["name"] for col in sales_files[0]["children"]] == ["id", "region"]
    names = {t.name for t in c.templates.list_page(ws, conn.id, PageRequest(0, 50)).items}
    assert {"sales", "sales/2026-01.parquet", "top.jsonl", ".", "broken/good.csv"} <= names
    assert "broken/bad.parquet" not in names and "broken" not in names  # nothing to read there


def test_a_malformed_file_fails_the_run_naming_file_and_line(c: Container, tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "orders").mkdir(parents=True)
    (root / "orders" / "a.csv").write_text("id,amount\n1,2\n2,3\n")
    (root / "orders" / "b.csv").write_text("id,amount\n3,4\n")
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, "files", "files", {"url": root.as_uri()}, None)
    c.services.catalog.discover(ws, conn.id)
    tpl = next(
        t
        for t in c.templates.list_page(ws, conn.id, PageRequest(0, 50)).items
        if t.name == "orders"
    )
    cfg = submitted_configuration(c, ws, tpl.id, "orders", format="parquet")
    # After discovery, a producer appends a bad line to one file.
    (root / "orders" / "b.csv").write_text("id,amount\n3,4\n4,four\n")
    ex, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, ex.id).latest
    assert run.status is RunStatus.FAILED
    assert run.error_message is not None
    assert run.error_message.startswith("orders/b.csv line 3:"), run.error_message
    assert "four" in run.error_message
    assert run.files == [] and list(c.storage.list()) == []


def test_json_errors_name_the_line_and_missing_folders_are_clear(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"id": 1}\n{"id": 2}\n{"id": "x"}\n')
    source = FilesSource(FilesSettings(url=tmp_path.as_uri()), {}, policy_for(tmp_path))
    # An unreadable file is listed with its problem (and gets no template), not fatal to browsing.
    (listed,) = source.catalog()
    assert (listed.qualified_name, listed.columns) == ("bad.jsonl", [])
    assert listed.error is not None and listed.error.startswith("bad.jsonl line 3: ")
    with pytest.raises(SourceError, match=r"^bad\.jsonl line 3: "):
        list(source.read(ReadPlan(TableRef(None, "bad.jsonl"), [], []), 100))
    with pytest.raises(SourceError, match="is not a folder"):
        FilesSource(
            FilesSettings(url=(tmp_path / "nope").as_uri()), {}, policy_for(tmp_path)
        ).check()


def test_settings_are_validated() -> None:
    for url, message in [
        ("ftp://host/x", "file:///… or s3://bucket"),
        ("s3:///prefix", "needs a bucket"),
        ("file:relative", "absolute path"),
    ]:
        with pytest.raises(ValueError, match=message):
            FilesSettings(url=url)


def test_a_bucket_on_a_real_s3_server(c: Container, s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    store = s3_server.store(bucket)
    for month, rows in (("01", [(1, "EU"), (2, "US")]), ("02", [(3, "EU")])):
        table = pa.table({"id": [r[0] for r in rows], "region": [r[1] for r in rows]})
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        obstore.put(store, f"landing/sales/2026-{month}.parquet", buffer.getvalue())
    obstore.put(store, "landing/sales/README.md", b"ignored")
    settings = {"url": f"s3://{bucket}/landing", "endpoint": s3_server.endpoint, "region": REGION}
    ws = c.workspaces.ensure_workspace("t")
    secrets = {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY}
    conn = c.connections.create(ws, "lake", "files", settings, c.secret_box.seal(secrets))
    assert c.services.catalog.test_connection(ws, conn.id) == (None, [])
    names = {t.qualified_name for t in c.services.catalog.discover(ws, conn.id)}
    assert names == {"sales", "sales/2026-01.parquet", "sales/2026-02.parquet"}
    tpl = next(
        t for t in c.templates.list_page(ws, conn.id, PageRequest(0, 50)).items if t.name == "sales"
    )
    cfg = submitted_configuration(c, ws, tpl.id, "sales", format="csv")
    ex, _ = c.services.executions.trigger(ws, cfg, {"whereClause": "region = 'EU'"})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, ex.id).latest
    assert run.status is RunStatus.COMPLETED, run.error_message
    data = b"".join(c.storage.stream(run.files[0].storage_key)).decode()
    assert data.splitlines() == ['"id","region"', '1,"EU"', '3,"EU"']


def test_browsing_again_reads_only_the_files_that_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "cache"
    root.mkdir()
    for name in ("a", "b", "c"):
        pq.write_table(pa.table({"id": [1], name: ["x"]}), root / f"{name}.parquet")
    opened: list[str] = []
    real_dataset = ds.dataset

    def counting(paths: list[str], **kwargs: Any) -> Any:
        opened.extend(Path(p).name for p in paths)
        return real_dataset(paths, **kwargs)

    monkeypatch.setattr(ds, "dataset", counting)
    source = FilesSource(FilesSettings(url=root.as_uri()), {}, policy_for(tmp_path))
    source.catalog()
    assert sorted(opened) == ["a.parquet", "b.parquet", "c.parquet"]

    opened.clear()
    pq.write_table(pa.table({"id": [1], "renamed": [2]}), root / "b.parquet")
    tables = {
        t.qualified_name: t
        for t in FilesSource(FilesSettings(url=root.as_uri()), {}, policy_for(tmp_path)).catalog()
    }
    assert opened == ["b.parquet"]  # the others are known by size and modification time
    assert [c.name for c in tables["b.parquet"].columns] == ["id", "renamed"]


NULL_LOOKALIKES = ["NA", "N/A", "null", "NULL", "nan", "#N/A", "None", "-"]


def test_csv_text_that_looks_like_null_stays_text(c: Container, tmp_path: Path) -> None:
    """Only an empty field is NULL: Namibia's code and North America's region survive."""
    folder = tmp_path / "in"
    folder.mkdir()
    lines = "".join(f"{i},{v},{v}\n" for i, v in enumerate(NULL_LOOKALIKES))
    (folder / "codes.csv").write_text(f'id,code,region\n{lines}99,,""\n')
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "codes.csv", "jsonl")
    assert run.status is RunStatus.COMPLETED, run.error_message
    rows = [json.loads(line) for line in data.decode().splitlines()]
    assert rows == [
        *({"id": i, "code": v, "region": v} for i, v in enumerate(NULL_LOOKALIKES)),
        {"id": 99, "code": None, "region": ""},
    ]


def test_a_connection_can_name_its_null_marker(c: Container, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "m.csv").write_text("id,amount,note\n1,NA,NA\n2,5,N/A\n3,,x\n")
    settings = {"url": folder.as_uri(), "csvNullValues": ["NA"]}
    run, data = extract_once(c, "files", settings, "m.csv", "jsonl")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert [json.loads(line) for line in data.decode().splitlines()] == [
        {"id": 1, "amount": None, "note": None},  # NA is NULL, so amount stays a number
        {"id": 2, "amount": 5, "note": "N/A"},
        {"id": 3, "amount": None, "note": "x"},
    ]


def test_csv_inference_never_changes_a_value(c: Container, tmp_path: Path) -> None:
    """Leading zeros stay text, integers beyond int64 and plain decimals stay exact."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "accounts.csv").write_text(
        "id,zip,big,amount,ratio,sci\n"
        "1,01234,99999999999999999999,12345678901234567890.12,0.5,1.5e3\n"
        "2,98765,1,0.10,-.25,2\n"
    )
    source = FilesSource(FilesSettings(url=folder.as_uri()), {}, policy_for(tmp_path))
    table = next(t for t in source.catalog() if t.kind == "file")
    assert [(col.name, col.type) for col in table.columns] == [
        ("id", "int64"),
        ("zip", "string"),
        ("big", "decimal(38,0)"),
        ("amount", "decimal(38,2)"),
        ("ratio", "decimal(38,2)"),
        ("sci", "float64"),
    ]
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "accounts.csv", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines() == [
        '"id","zip","big","amount","ratio","sci"',
        '1,"01234",99999999999999999999,12345678901234567890.12,0.50,1500',
        '2,"98765",1,0.10,-0.25,2',
    ]


def test_a_jsonl_error_names_the_line_in_the_file(tmp_path: Path) -> None:
    """Not the row within Arrow's block (``line 8339`` for line 100,002), and blank lines
    count as lines."""
    folder = tmp_path / "events"
    folder.mkdir()
    good = "".join(json.dumps({"id": i, "pad": "x" * 40}) + "\n" for i in range(3))
    (folder / "a.jsonl").write_text(good)
    lines = [json.dumps({"id": i, "pad": "x" * 40}) for i in range(100_000)]
    lines[50_000] = ""  # a blank line is still a line
    (folder / "b.jsonl").write_text("\n".join([*lines, '{"id": "bad"}', '{"id": 1}']) + "\n")
    source = FilesSource(FilesSettings(url=tmp_path.as_uri()), {}, policy_for(tmp_path))
    table = next(t for t in source.catalog() if t.qualified_name == "events")
    plan = ReadPlan(TableRef(None, "events"), table.columns, table.columns)
    with pytest.raises(SourceError) as caught:
        for _ in source.read(plan, 10_000):
            pass
    assert str(caught.value).startswith("events/b.jsonl line 100001: "), str(caught.value)
    assert "row" not in str(caught.value)


def test_gzipped_parquet_files_are_read(c: Container, tmp_path: Path) -> None:
    """``.parquet.gz`` is listed as a data file, so it is read (it used to fail with "magic
    bytes not found"), alone and in a folder beside a plain Parquet file."""
    folder = tmp_path / "in"
    (folder / "sales").mkdir(parents=True)
    for name, rows in (("a.parquet", [1, 2]), ("b.parquet.gz", [3])):
        buffer = io.BytesIO()
        pq.write_table(pa.table({"id": rows, "region": ["EU"] * len(rows)}), buffer)
        data = buffer.getvalue()
        (folder / "sales" / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    settings = {"url": folder.as_uri()}
    run, data = extract_once(c, "files", settings, "sales/b.parquet.gz", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines() == ['"id","region"', '3,"EU"']
    run, data = extract_once(c, "files", settings, "sales", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert sorted(data.decode().splitlines()[1:]) == ['1,"EU"', '2,"EU"', '3,"EU"']
    # A broken one is named by its own path, not the temporary copy's.
    (folder / "sales" / "b.parquet.gz").write_bytes(gzip.compress(b"not parquet"))
    source = FilesSource(FilesSettings(url=folder.as_uri()), {}, policy_for(tmp_path))
    broken = next(t for t in source.catalog() if t.qualified_name == "sales/b.parquet.gz")
    assert broken.error is not None
    assert broken.error.startswith("sales/b.parquet.gz: "), broken.error


def test_unsigned_integers_keep_every_value(c: Container, tmp_path: Path) -> None:
    """uint64 (hashes, ids from numpy) past int64's range is decimal(20,0), as MySQL's BIGINT
    UNSIGNED: exact in every format (it failed the run: "not in range: 0 to 2^63-1")."""
    folder = tmp_path / "in"
    folder.mkdir()
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "u64": pa.array([2**64 - 1, 0, None], pa.uint64()),
            "u32": pa.array([2**32 - 1, 0, None], pa.uint32()),
        }
    )
    pq.write_table(table, folder / "hashes.parquet")
    settings = {"url": folder.as_uri()}
    run, data = extract_once(c, "files", settings, "hashes.parquet", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines() == [
        '"id","u64","u32"',
        "1,18446744073709551615,4294967295",
        "2,0,0",
        "3,,",
    ]
    run, data = extract_once(c, "files", settings, "hashes.parquet", "jsonl")
    assert data.decode().splitlines()[0] == '{"id":1,"u64":"18446744073709551615","u32":4294967295}'
    run, data = extract_once(c, "files", settings, "hashes.parquet", "parquet")
    got = pq.read_table(io.BytesIO(data))
    assert got.schema.field("u64").type == pa.decimal128(20, 0)
    assert got.column("u64").to_pylist() == [Decimal(2**64 - 1), Decimal(0), None]
    assert got.column("u32").to_pylist() == [2**32 - 1, 0, None]


def test_a_value_finer_than_microseconds_fails_naming_its_column(
    c: Container, tmp_path: Path
) -> None:
    """Egress keeps microseconds: a nanosecond timestamp with nanoseconds in it fails the run
    (never truncated), naming the file, the column and the value; whole microseconds pass."""
    folder = tmp_path / "in"
    folder.mkdir()
    stamps = pa.array([1_700_000_000_123_456_000, 1_700_000_000_123_456_789], pa.timestamp("ns"))
    pq.write_table(pa.table({"id": [1, 2], "at": stamps}), folder / "fine.parquet")
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "fine.parquet", "csv")
    assert run.status is RunStatus.FAILED and data == b""
    assert run.error_message == (
        "fine.parquet: column 'at' holds 2023-11-14 22:13:20.123456789 (timestamp[ns]), which"
        " timestamp[us] cannot hold without changing it; filter it out with a whereClause"
    )
    pq.write_table(pa.table({"id": [1], "at": stamps[:1]}), folder / "whole.parquet")
    run, data = extract_once(c, "files", {"url": folder.as_uri()}, "whole.parquet", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert data.decode().splitlines()[1] == '1,"2023-11-14 22:13:20.123456"'
