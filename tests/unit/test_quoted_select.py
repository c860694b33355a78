"""``quoted_select``: a plan's SELECT text kept between runs only when it quotes no value (a
quoted value is the session's quoting, never reused from another call)."""

from __future__ import annotations

import dataclasses
import typing
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


def _dataclasses_within(cls: type, seen: set[type]) -> None:
    """Every dataclass a field of ``cls`` may hold, ``cls`` included, into ``seen``."""
    if cls in seen or not dataclasses.is_dataclass(cls):
        return
    seen.add(cls)
    for f in dataclasses.fields(cls):
        hints = typing.get_type_hints(cls)[f.name]
        for arg in [hints, *typing.get_args(hints)]:
            for inner in [arg, *typing.get_args(arg)]:
                if isinstance(inner, type):
                    _dataclasses_within(inner, seen)


def test_every_field_a_plan_is_built_from_shows_in_its_repr() -> None:
    """The kept texts are keyed by the plan's repr: a field left out of it (``repr=False``)
    would make two different plans share one SELECT."""
    seen: set[type] = set()
    _dataclasses_within(ReadPlan, seen)
    assert {ReadPlan, KeySelection, TableRef, ColumnInfo} <= seen
    hidden = [
        f"{cls.__name__}.{f.name}" for cls in seen for f in dataclasses.fields(cls) if not f.repr
    ]
    assert hidden == []
    assert all(cls.__repr__ is not object.__repr__ for cls in seen)
