"""Field selection and plans built from frozen execution snapshots."""

from __future__ import annotations

import pytest

from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.errors import Invalid
from egress.domain.plan import plan_from_snapshot, select_fields
from egress.domain.spec import ExecutionSpec
from egress.domain.types import decimal_type, is_valid, parse_decimal

FIELDS = [
    ColumnInfo("id", "int64", False),
    ColumnInfo("region", "string"),
    ColumnInfo("amount", "decimal(12,2)"),
]


def test_no_selection_means_all_fields_in_template_order() -> None:
    assert select_fields(FIELDS, None) == FIELDS


def test_selection_keeps_the_requested_order() -> None:
    assert [f.name for f in select_fields(FIELDS, ["amount", "id"])] == ["amount", "id"]


def test_unknown_fields_are_named() -> None:
    with pytest.raises(Invalid) as err:
        select_fields(FIELDS, ["id", "nope", "zip"])
    assert "'nope'" in err.value.detail and "'zip'" in err.value.detail
    assert err.value.errors[0].loc == ("body", "fields")


def test_repeated_fields_are_refused() -> None:
    with pytest.raises(Invalid, match="must not repeat"):
        select_fields(FIELDS, ["id", "id"])


def test_plan_from_snapshot() -> None:
    snapshot = {
        "template": {
            "sourceTable": "public.orders",
            "sourceSchema": "public",
            "sourceName": "orders",
            "fields": [f.as_dict() for f in FIELDS],
        },
        "configuration": {"fields": ["region"]},
    }
    plan = plan_from_snapshot(ExecutionSpec.from_json(snapshot))
    assert plan.table == TableRef("public", "orders")
    assert [f.name for f in plan.fields] == ["region"]


def test_decimal_types() -> None:
    assert decimal_type(12, 2) == "decimal(12,2)"
    assert decimal_type(60, 2) == "decimal"  # beyond Arrow's decimal128: carried as text
    assert parse_decimal("decimal(12,2)") == (12, 2)
    assert parse_decimal("decimal") is None
    assert is_valid("timestamptz") and is_valid("decimal(3,0)") and not is_valid("money")
