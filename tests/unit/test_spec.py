"""The execution spec: every shape stored so far reads, and the versioned form round-trips."""

from __future__ import annotations

from typing import Any

import pytest

from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.plan import KeySelection, plan_from_snapshot
from egress.domain.spec import SPEC_VERSION, ExecutionSpec, FrozenWindow, SnapshotMark

TEMPLATE = {
    "id": "t1",
    "name": "public.orders",
    "sourceTable": "public.orders",
    "sourceSchema": "public",
    "sourceName": "orders",
    "fields": [{"name": "id", "type": "int64", "nullable": False}],
    "primaryKey": ["id"],
    "cursorField": "id",
    "dateField": None,
    "query": None,
}
CONFIGURATION = {
    "id": "c1",
    "name": "daily",
    "version": 3,
    "fields": None,
    "format": "jsonl",
    "compression": "gzip",
    "destination": {"type": "storage", "path": "exports/orders"},
    "fileNamePattern": None,
    "splitBy": "region",
}


def test_an_unversioned_execution_from_before_run_options_reads_with_their_defaults() -> None:
    stored: dict[str, Any] = {
        "configuration": CONFIGURATION,
        "template": TEMPLATE,
        "connection": {"id": "k1", "type": "postgresql"},
    }
    spec = ExecutionSpec.from_json(stored)
    assert spec.template.source == TableRef("public", "orders")
    assert spec.template.fields == [ColumnInfo("id", "int64", False)]
    assert spec.configuration.folder == "exports/orders" and spec.split
    assert spec.options.select_all and not spec.incremental and spec.window is None
    assert spec.to_json()["version"] == SPEC_VERSION


@pytest.mark.parametrize(
    "window",
    [
        {"field": "id", "low": None, "high": 300, "lag": 5.0},
        {
            "field": "id",
            "low": 10,
            "high": 300,
            "snapshot": "100:104:",
            "quiet": False,
            "previousSnapshot": "90:90:",
            "after": "90:90:",
        },
    ],
)
def test_stored_options_and_windows_round_trip_exactly(window: dict[str, Any]) -> None:
    options = {
        "dateFrom": "2026-01-01",
        "dateTo": None,
        "whereClause": "id > 3",
        "rows": {"fields": ["id"], "values": [[1], [2]]},
        "selectAll": False,
        "extractOnlyNew": True,
        "incrementalLag": None,
    }
    stored = {
        "configuration": CONFIGURATION,
        "template": TEMPLATE,
        "connection": {"id": "k1", "type": "postgresql"},
        "options": options,
        "window": window,
    }
    spec = ExecutionSpec.from_json(stored)
    assert spec.options.rows == KeySelection(["id"], [[1], [2]])
    assert spec.incremental
    assert spec.to_json() == {"version": SPEC_VERSION, **stored}
    assert ExecutionSpec.from_json(spec.to_json()) == spec


def test_a_snapshot_window_keeps_its_parts() -> None:
    window = FrozenWindow.from_json(
        {
            "field": "id",
            "low": 1,
            "high": 2,
            "snapshot": "s",
            "quiet": True,
            "previousSnapshot": None,
            "after": None,
        }
    )
    assert window.snapshot == SnapshotMark("s", True, None, None)
    assert window.lag is None


def test_a_sql_template_snapshot_reads_no_table() -> None:
    template = {**TEMPLATE, "query": "SELECT 1 AS id", "sourceSchema": None, "sourceName": None}
    spec = ExecutionSpec.from_json({"template": template})
    assert spec.template.source is None and spec.template.query == "SELECT 1 AS id"


def test_a_spec_from_a_newer_version_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="version 2 is newer"):
        ExecutionSpec.from_json({"version": 2, "template": TEMPLATE})


def test_a_template_s_own_csv_null_values_are_frozen_and_reach_the_plan() -> None:
    """Stored only when the template has its own list (older specs keep their shape); the
    run's plan reads with it, or with the connection's when there is none (None)."""
    base = {"configuration": CONFIGURATION, "connection": {"id": "k1", "type": "files"}}
    for nulls, expected in (([], ()), (["NA", "-"], ("NA", "-")), (None, None)):
        template = TEMPLATE if nulls is None else {**TEMPLATE, "csvNullValues": nulls}
        spec = ExecutionSpec.from_json({**base, "template": template})
        assert spec.to_json()["template"] == template
        assert plan_from_snapshot(spec).null_values == expected
