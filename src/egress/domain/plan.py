"""A read plan: what one run takes from its source, built from the frozen execution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from egress.domain.catalog import ColumnInfo
from egress.domain.errors import Invalid


@dataclass(frozen=True)
class ReadPlan:
    source_table: str  # "schema.table"
    fields: list[ColumnInfo]

    @property
    def schema_name(self) -> str:
        return self.source_table.split(".", 1)[0]

    @property
    def table_name(self) -> str:
        return self.source_table.split(".", 1)[1]


def select_fields(template_fields: list[ColumnInfo], wanted: list[str] | None) -> list[ColumnInfo]:
    """The configuration's fields in the order given; all template fields when none given."""
    if wanted is None:
        return list(template_fields)
    by_name = {f.name: f for f in template_fields}
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        raise Invalid.at(
            ("body", "fields"),
            f"unknown field(s) {', '.join(map(repr, unknown))}; "
            f"the template has: {', '.join(by_name)}",
        )
    if len(set(wanted)) != len(wanted):
        raise Invalid.at(("body", "fields"), "fields must not repeat")
    return [by_name[name] for name in wanted]


def plan_from_snapshot(parameters: dict[str, Any]) -> ReadPlan:
    template = parameters["template"]
    fields = [ColumnInfo(**f) for f in template["fields"]]
    return ReadPlan(
        source_table=template["sourceTable"],
        fields=select_fields(fields, parameters["configuration"]["fields"]),
    )
