"""Files the catalog left out without a word: a folder whose CSV files order their columns
differently (no folder template), and a CSV file that is only its header line (a catalog
error without a final newline). Through the catalog service and a run, as a user lists and
extracts them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from egress.api.native.presenters import element_tree
from egress.container import Container
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from tests.support.factories import extract_once, sqlite_container, submitted_configuration

HEADER = "id,region,amount"


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    with sqlite_container(tmp_path) as container:
        yield container


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "in"
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    return root


def _templates(c: Container, root: Path) -> dict[str, list[tuple[str, str]]]:
    """The templates discovery makes for ``root``, with their columns."""
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(
        ws, f"files_{root.parent.name}", "files", {"url": root.as_uri()}, None
    )
    c.services.catalog.discover(ws, conn.id)
    return {
        t.name: [(f.name, f.type) for f in t.fields]
        for t in c.templates.list_page(ws, conn.id, PageRequest(0, 100)).items
    }


def test_a_folder_whose_files_order_the_columns_differently_is_read_by_name(
    c: Container, tmp_path: Path
) -> None:
    """The folder had no template, and nothing said why; each file's values must land in
    their own column."""
    root = _folder(
        tmp_path,
        {
            "orders/a.csv": f"{HEADER}\n1,EU,10\n2,US,20\n",
            "orders/b.csv": "amount,id,region\n30,3,EU\n",
            "orders/c.csv": "region,amount,id\nAP,40,4\n",
        },
    )
    templates = _templates(c, root)
    assert templates["orders"] == [("id", "int64"), ("region", "string"), ("amount", "int64")]

    run, data = extract_once(c, "files", {"url": root.as_uri()}, "orders", "csv")
    assert run.status is RunStatus.COMPLETED, run.error_message
    assert run.warnings == []
    assert data.decode().splitlines() == [
        '"id","region","amount"',
        '1,"EU",10',
        '2,"US",20',
        '3,"EU",30',
        '4,"AP",40',
    ]


def test_a_file_in_another_order_added_after_discovery_is_read_by_name(
    c: Container, tmp_path: Path
) -> None:
    """The template was made from files in one order; a later file in another order is read
    by its header's names, never into the template's places."""
    root = _folder(tmp_path, {"orders/a.csv": f"{HEADER}\n1,EU,10\n"})
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, "files", "files", {"url": root.as_uri()}, None)
    c.services.catalog.discover(ws, conn.id)
    tpl = next(
        t
        for t in c.templates.list_page(ws, conn.id, PageRequest(0, 50)).items
        if t.name == "orders"
    )
    cfg = submitted_configuration(c, ws, tpl.id, "orders", format="csv")
    (root / "orders" / "b.csv").write_text("region,amount,id\nUS,20,2\n")
    ex, _ = c.services.executions.trigger(ws, cfg, {})
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, ex.id).latest
    assert run.status is RunStatus.COMPLETED, run.error_message
    data = b"".join(c.storage.stream(run.files[0].storage_key)).decode()
    assert data.splitlines() == ['"id","region","amount"', '1,"EU",10', '2,"US",20']


def test_a_value_a_file_in_another_order_cannot_read_names_that_file_and_column(
    c: Container, tmp_path: Path
) -> None:
    """Arrow numbers the columns of the file it read: the first file's column at that place
    ('id', and the folder as 'flags/*') was named instead."""
    later = "flag,id\n" + "true,7\n" * 200_000 + "1,8\n"  # past b.csv's first 1 MiB
    root = _folder(tmp_path, {"flags/a.csv": "id,flag\n1,true\n", "flags/b.csv": later})
    run, _ = extract_once(c, "files", {"url": root.as_uri()}, "flags", "csv")
    assert run.status is RunStatus.FAILED
    assert run.error_message == (
        "flags/b.csv line 200002: column 'flag' holds '1', which boolean cannot read; set the "
        "column's type (string keeps the text) with a custom template's columnTypes"
    )


@pytest.mark.parametrize("ending", ["", "\n", "\r\n"], ids=["no-newline", "newline", "crlf"])
def test_a_header_only_csv_file_is_listed_and_runs_with_no_rows(
    c: Container, tmp_path: Path, ending: str
) -> None:
    """Without a final newline the file was a catalog error ("Empty CSV file or block") with
    no template, and its folder had none either."""
    root = _folder(
        tmp_path,
        {
            "empty.csv": f"{HEADER}{ending}",
            "orders/a.csv": f"{HEADER}\n1,EU,10\n",
            "orders/b.csv": f"{HEADER}{ending}",
        },
    )
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, "files", "files", {"url": root.as_uri()}, None)
    tree = element_tree(conn.id, c.services.catalog.discover(ws, conn.id))
    files = {f["path"]: f for folder in tree for f in folder["children"]}
    assert "error" not in files["empty.csv"], files["empty.csv"]["error"]
    assert [(col["name"], col["type"]) for col in files["empty.csv"]["children"]] == [
        ("id", "string"),
        ("region", "string"),
        ("amount", "string"),
    ]
    names = {t.name for t in c.templates.list_page(ws, conn.id, PageRequest(0, 50)).items}
    assert {"empty.csv", "orders", "orders/b.csv", "."} <= names

    run, data = extract_once(c, "files", {"url": root.as_uri()}, "empty.csv", "csv")
    # A run with no rows ends so, as over any empty table (the header-only file with a
    # final newline always did).
    assert (run.status, run.error_message, run.record_count) == (
        RunStatus.COMPLETED_NO_DATA,
        None,
        0,
    )
    assert (run.files, data) == ([], b"")

    run, data = extract_once(c, "files", {"url": root.as_uri()}, "orders", "csv")
    assert (run.status, run.error_message, run.record_count) == (RunStatus.COMPLETED, None, 1)
    assert data.decode().splitlines() == ['"id","region","amount"', '1,"EU",10']
    templates = _templates(c, root)
    assert templates["orders"] == [("id", "int64"), ("region", "string"), ("amount", "int64")]
