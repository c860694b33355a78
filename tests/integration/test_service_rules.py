"""Request rules that live in the services, so that every face (the native API, the seed faces,
the CLI) gets them by calling the same method: a PATCH may not null what a configuration cannot
be without, and a template is made over a table or a query, never both, with nothing a query
already decides. Errors name the logical field; each face renames it for its clients. On SQLite
and PostgreSQL metadata."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from egress.container import Container
from egress.domain.configuration import REQUIRED
from egress.domain.errors import Invalid
from egress.services.catalog import NewTemplate
from tests.support.factories import configuration_values


@pytest.fixture
def shop(container: Container, tmp_path: Path) -> tuple[str, str]:
    """A workspace and a sqlite connection to a table ``main.sales``."""
    path = tmp_path / "src.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE sales (id INTEGER PRIMARY KEY, region TEXT)")
    ws = container.workspaces.ensure_workspace("t")
    return ws, container.connections.create(ws, "src", "sqlite", {"path": str(path)}, None).id


def _loc(exc: pytest.ExceptionInfo[Invalid]) -> list[tuple[str | int, ...]]:
    return [e.loc for e in exc.value.errors]


def test_a_patch_may_not_null_what_a_configuration_cannot_be_without(
    container: Container, shop: tuple[str, str]
) -> None:
    c = container
    ws, conn = shop
    template = c.services.catalog.create_template(ws, "admin", NewTemplate(conn, "s", "main.sales"))
    pattern = "{configurationName}.{ext}"
    values = configuration_values(template.id, "daily", file_name_pattern=pattern)
    cfg = c.services.configurations.create(ws, values)
    assert set(REQUIRED) == {
        "name",
        "template_id",
        "format",
        "compression",
        "destination",
        "extract_only_new",
        "backfill_window",
        "parallelism",
    }
    for key in REQUIRED:
        with pytest.raises(Invalid, match="must not be null") as exc:
            c.services.configurations.patch(ws, cfg.id, {key: None})
        assert _loc(exc) == [("body", key)]
    # What may be absent can be cleared, and nothing else changes.
    cleared = c.services.configurations.patch(ws, cfg.id, {"file_name_pattern": None})
    assert (cleared.file_name_pattern, cleared.name, cleared.version) == (None, "daily", 2)


def test_a_template_is_made_over_a_table_or_a_query(
    container: Container, shop: tuple[str, str]
) -> None:
    c = container
    ws, conn = shop
    make = c.services.catalog.create_template
    for both_or_neither in (
        NewTemplate(conn, "both", table="main.sales", query="SELECT 1 AS a"),
        NewTemplate(conn, "neither"),
    ):
        with pytest.raises(Invalid) as exc:
            make(ws, "admin", both_or_neither)
        assert _loc(exc) == [("body", "table"), ("body", "query")]
    query = "SELECT id FROM sales"
    for extra, field in (
        ({"column_types": {"id": "string"}}, "column_types"),
        ({"csv_null_values": ["NA"]}, "csv_null_values"),
        ({"schema": "main"}, "schema"),
        ({"fields": ["id"]}, "fields"),
    ):
        with pytest.raises(Invalid) as exc:
            make(ws, "admin", NewTemplate(conn, "q", query=query, **extra))  # type: ignore[arg-type]
        assert _loc(exc) == [("body", field)]
    with pytest.raises(Invalid, match="unknown connection 'nope'") as exc:
        make(ws, "admin", NewTemplate("nope", "q", query=query))
    assert _loc(exc) == [("body", "connection_id")]

    by_table = make(ws, "editor", NewTemplate(conn, "t", "sales", schema="main"))
    by_query = make(ws, "admin", NewTemplate(conn, "q", query=query, primary_key=["id"]))
    assert (by_table.source_table, [f.name for f in by_table.fields]) == (
        "main.sales",
        ["id", "region"],
    )
    assert (by_query.query, [f.name for f in by_query.fields]) == (query, ["id"])
