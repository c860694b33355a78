"""``quoted_select``: a plan's SELECT text kept between runs only when it quotes no value (a
quoted value is the session's quoting, never reused from another call)."""

from __future__ import annotations

from typing import Any

from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.plan import KeySelection, ReadPlan
from egress.query.select import plain_column, quoted_select, select_statement

FIELDS = [ColumnInfo("id", "int64"), ColumnInfo("name", "string")]


def _quote(tag: str) -> Any:
    return lambda value: f"'{tag}:{value}'"


def test_a_plan_without_values_gives_the_text_select_statement_gives() -> None:
    plan = ReadPlan(TableRef("public", "items"), FIELDS, FIELDS)
    built = select_statement(plan, "postgres", plain_column, quote=_quote("a")).sql
    assert quoted_select(plan, "postgres", plain_column, _quote("a")) == built
    # Asked again (served from the kept text), and for another table: each its own text.
    assert quoted_select(plan, "postgres", plain_column, _quote("b")) == built
    other = ReadPlan(TableRef("public", "others"), FIELDS, FIELDS)
    assert '"others"' in quoted_select(other, "postgres", plain_column, _quote("a"))


def test_a_quoted_value_is_quoted_by_each_call_never_kept() -> None:
    plan = ReadPlan(TableRef("public", "items"), FIELDS, FIELDS, keys=KeySelection(["id"], [[7]]))
    first = quoted_select(plan, "postgres", plain_column, _quote("first"))
    second = quoted_select(plan, "postgres", plain_column, _quote("second"))
    assert "'first:7'" in first and "'second:7'" in second
    assert second == select_statement(plan, "postgres", plain_column, quote=_quote("second")).sql
