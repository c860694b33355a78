"""A `files` connection through the HTTP API: browse a folder of Parquet and CSV files, extract
a folder dataset with a filter, download the exact rows; bad settings and a malformed file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import wait_for_status
from tests.e2e.helpers import (
    API,
    CONFIGS,
    DONE,
    configuration,
    problem,
    trigger,
)


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    (root / "sales").mkdir(parents=True)
    for month, rows in (("01", [(1, "EU", 10.5), (2, "NA", 3.0)]), ("02", [(3, "EU", 99.0)])):
        table = pa.table(
            {
                "id": [r[0] for r in rows],
                "region": [r[1] for r in rows],
                "amount": [r[2] for r in rows],
            }
        )
        pq.write_table(table, root / "sales" / f"2026-{month}.parquet")
    (root / "sales" / "README.md").write_text("monthly sales")
    (root / "orders.csv").write_text("id,total\n1,5\n2,7\n")
    (root / "broken.parquet").write_bytes(b"PAR1 but not really")
    return root


def _connect(http: httpx.Client, root: Path, name: str) -> str:
    r = http.post(
        f"{API}/connections",
        json={"name": name, "type": "files", "settings": {"url": root.as_uri()}},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _template(http: httpx.Client, conn: str, name: str) -> dict[str, object]:
    listed = http.get(f"{API}/templates", params={"connectionId": conn, "limit": 100})
    assert listed.status_code == 200, listed.text
    return next(t for t in listed.json()["data"] if t["name"] == name)


def test_browse_extract_and_download_a_folder(http: httpx.Client, landing: Path) -> None:
    conn = _connect(http, landing, "landing")
    assert http.post(f"{API}/connections/{conn}/test").json() == {
        "ok": True,
        "error": None,
        "warnings": [],
    }

    elements = http.get(f"{API}/connections/{conn}/elements").json()["data"]
    assert [(e["elementType"], e["name"]) for e in elements] == [
        ("FOLDER", "."),
        ("FOLDER", "sales"),
    ]
    files = {f["path"]: f for folder in elements for f in folder["children"]}
    assert sorted(files) == [
        "broken.parquet",
        "orders.csv",
        "sales/2026-01.parquet",
        "sales/2026-02.parquet",
    ]
    assert files["broken.parquet"]["children"] == []
    assert files["broken.parquet"]["error"].startswith("broken.parquet: ")
    assert "error" not in files["orders.csv"]
    assert [(c["name"], c["type"]) for c in files["orders.csv"]["children"]] == [
        ("id", "int64"),
        ("total", "int64"),
    ]

    sales = _template(http, conn, "sales")
    assert sales["fields"] == [
        {"name": "id", "type": "int64", "nullable": True},
        {"name": "region", "type": "string", "nullable": True},
        {"name": "amount", "type": "float64", "nullable": True},
    ]
    cfg = configuration(http, str(sales["id"]), "eu_sales", fields=["id", "amount"])
    eid = trigger(http, cfg, whereClause="region = 'EU' AND amount > 10")["id"]
    details = wait_for_status(http, cfg, eid, DONE)
    assert details["latestStatus"] == "COMPLETED", details
    assert details["latestRecordCount"] == 2
    download = http.get(f"{CONFIGS}/{cfg}/executions/{eid}/download")
    assert download.status_code == 200
    assert list(csv.reader(io.StringIO(download.text))) == [
        ["id", "amount"],
        ["1", "10.5"],
        ["3", "99"],
    ]


def test_a_malformed_file_fails_the_run_with_file_and_line(
    http: httpx.Client, landing: Path
) -> None:
    conn = _connect(http, landing, "landing_bad")
    cfg = configuration(http, str(_template(http, conn, "orders.csv")["id"]), "orders_bad")
    (landing / "orders.csv").write_text("id,total\n1,5\n2,seven\n")
    eid = trigger(http, cfg)["id"]
    details = wait_for_status(http, cfg, eid, DONE)
    run = details["runs"][0]  # type: ignore[index]
    assert run["status"] == "FAILED"
    assert run["errorMessage"].startswith("orders.csv line 3: "), run["errorMessage"]
    assert "seven" in run["errorMessage"]
    problem(http.get(f"{CONFIGS}/{cfg}/executions/{eid}/download"), 404)


@pytest.mark.parametrize(
    ("settings", "field", "message"),
    [
        ({"url": "ftp://example.com/in"}, "settings.url", "file:///… or s3://bucket"),
        ({"url": "file:relative/path"}, "settings.url", "absolute path"),
        ({"url": "s3:///no-bucket"}, "settings.url", "needs a bucket"),
        ({"url": "file:///in", "colour": "blue"}, "settings.colour", "Extra inputs"),
    ],
)
def test_bad_settings_are_a_422_naming_the_field(
    http: httpx.Client, settings: dict[str, str], field: str, message: str
) -> None:
    r = http.post(f"{API}/connections", json={"name": "bad", "type": "files", "settings": settings})
    body = problem(r, 422, field)
    assert message in body["detail"], body


def test_a_missing_folder_is_reported_by_the_connection_test(
    http: httpx.Client, tmp_path: Path
) -> None:
    conn = _connect(http, tmp_path / "nowhere", "nowhere")
    assert http.post(f"{API}/connections/{conn}/test").json() == {
        "ok": False,
        "error": f"{tmp_path / 'nowhere'} is not a folder",
        "warnings": [],
    }
    problem(http.get(f"{API}/connections/{conn}/elements"), 422)


def test_a_custom_template_sets_csv_column_types(
    http: httpx.Client, landing: Path, tmp_path: Path
) -> None:
    """``columnTypes`` overrides inference: account numbers without leading zeros in the first
    rows still keep a later ``00042`` when the template says they are text."""
    (landing / "accounts.csv").write_text("account,balance\n12345,10\n00042,2.5\n")
    conn = _connect(http, landing, "landing_types")
    body = {"connectionId": conn, "name": "accounts", "table": "accounts.csv"}
    r = http.post(
        f"{API}/templates",
        json={**body, "columnTypes": {"account": "string", "balance": "decimal(10,2)"}},
    )
    assert r.status_code == 201, r.text
    assert r.json()["fields"] == [
        {"name": "account", "type": "string", "nullable": True},
        {"name": "balance", "type": "decimal(10,2)", "nullable": True},
    ]
    cfg = configuration(http, r.json()["id"], "accounts")
    eid = trigger(http, cfg)["id"]
    assert wait_for_status(http, cfg, eid, DONE)["latestStatus"] == "COMPLETED"
    download = http.get(f"{CONFIGS}/{cfg}/executions/{eid}/download")
    assert download.text.splitlines() == [
        '"account","balance"',
        '"12345",10.00',
        '"00042",2.50',
    ]

    for types, field, message in [
        ({"nope": "string"}, "columnTypes.nope", "unknown field"),
        ({"account": "json"}, "columnTypes.account", "not a type CSV text can be read as"),
        ({"account": "decimal(40,2)"}, "columnTypes.account", "not a type CSV text"),
    ]:
        r = http.post(f"{API}/templates", json={**body, "name": "x", "columnTypes": types})
        assert message in problem(r, 422, field)["detail"]
    parquet = {"connectionId": conn, "name": "y", "table": "sales/2026-01.parquet"}
    r = http.post(f"{API}/templates", json={**parquet, "columnTypes": {"id": "string"}})
    assert "only CSV files" in problem(r, 422, "columnTypes")["detail"]


def test_files_that_differ_from_the_template_leave_warnings_on_the_run(
    http: httpx.Client, tmp_path: Path
) -> None:
    """A column only one file has is not read, a column a file lacks is NULL: the run still
    completes, and its details say so, naming file and column."""
    root = tmp_path / "drift"
    (root / "orders").mkdir(parents=True)
    for name in ("a", "b", "c"):
        (root / "orders" / f"{name}.csv").write_text(f"id,region\n{ord(name)},EU\n")
    conn = _connect(http, root, "drift")
    cfg = configuration(http, str(_template(http, conn, "orders")["id"]), "drift")
    (root / "orders" / "b.csv").write_text("id,region,extra\n98,EU,x\n")
    (root / "orders" / "c.csv").write_text("id\n99\n")
    eid = trigger(http, cfg)["id"]
    details = wait_for_status(http, cfg, eid, DONE)
    run = details["runs"][0]  # type: ignore[index]
    assert run["status"] == "COMPLETED", run
    assert run["warnings"] == [
        "orders/b.csv: column 'extra' is not in the template (orders/a.csv has no such "
        "column); it was not read",
        "orders/c.csv: has no column 'region'; its rows have NULL there",
    ]
    rows = http.get(f"{CONFIGS}/{cfg}/executions/{eid}/download").text.splitlines()
    assert sorted(rows[1:]) == ['97,"EU"', '98,"EU"', "99,"]
