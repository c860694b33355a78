"""Field selection and plans built from frozen execution snapshots."""

from __future__ import annotations

import pytest

from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.errors import Invalid
from egress.domain.plan import (
    KeyRange,
    first_part_weight,
    key_ranges,
    plan_from_snapshot,
    select_fields,
)
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


def _keys_of(ranges: list[KeyRange], keys: range) -> list[list[int]]:
    return [
        [k for k in keys if (r.low is None or k >= r.low) and (r.high is None or k < r.high)]
        for r in ranges
    ]


def test_key_ranges_hold_every_key_once_the_first_narrower() -> None:
    # The first range 0.9 times as wide as the later one (its part is appended to first).
    assert first_part_weight(2) == 0.9
    assert key_ranges("id", 1, 1_000_000, 2) == [
        KeyRange("id", None, 473_685),
        KeyRange("id", 473_685, None),
    ]
    assert [first_part_weight(n) for n in (1, 3, 4, 12)] == [1.0, 0.8, 0.7, 0.5]
    assert key_ranges("id", 0, 269, 3) == [  # 0.8 : 1 : 1 of 270 values
        KeyRange("id", None, 77),
        KeyRange("id", 77, 173),
        KeyRange("id", 173, None),
    ]
    for low, high, parts in [(1, 2, 2), (1, 3, 3), (-5, 5, 4), (7, 7, 3), (0, 99, 4)]:
        ranges = key_ranges("id", low, high, parts)
        held = _keys_of(ranges, range(low - 3, high + 4))
        assert sorted(k for keys in held for k in keys) == list(range(low - 3, high + 4))
        assert len(ranges) == min(parts, high - low + 1) and all(held)  # none empty
    # A key that may be NULL: the first range also takes the NULL keys, no other does.
    assert key_ranges("k", 0, 269, 3, nulls=True) == [
        KeyRange("k", None, 77, nulls=True),
        KeyRange("k", 77, 173),
        KeyRange("k", 173, None),
    ]
