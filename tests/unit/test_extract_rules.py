"""Rules the seed-001 extracts face rests on: structured filters compiled through the
whereClause grammar, a data table's name from a title, the one-word sync status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from egress.domain.configuration import sync_status
from egress.domain.data_tables import NAME_PATTERN, name_for_title, system_column_clash
from egress.domain.errors import Invalid
from egress.domain.status import ConfigStatus, RunStatus
from egress.query.conditions import Condition, compile_conditions
from egress.query.where import parse_where

FIELDS = ["id", "region", "amount"]


def test_each_operator_compiles_to_the_grammar_with_values_quoted() -> None:
    text = compile_conditions(
        [
            Condition("region", "=", "O'Brien"),
            Condition("region", "!=", "x"),
            Condition("amount", ">", 1),
            Condition("amount", ">=", 1.5),
            Condition("amount", "<", -2),
            Condition("amount", "<=", True),
            Condition("id", "in", [1, 2]),
            Condition("region", "not_in", ["a", "b"]),
            Condition("region", "contains", "EU"),
            Condition("region", "is_null"),
            Condition("id", "is_not_null"),
        ],
        FIELDS,
    )
    assert text == (
        "\"region\" = 'O''Brien' AND \"region\" <> 'x' AND \"amount\" > 1 AND "
        '"amount" >= 1.5 AND "amount" < -2 AND "amount" <= TRUE AND "id" IN (1, 2) AND '
        "NOT \"region\" IN ('a', 'b') AND \"region\" LIKE '%EU%' AND \"region\" IS NULL AND "
        'NOT "id" IS NULL'
    )
    parse_where(text, FIELDS)  # the same checks as any whereClause


def test_a_hostile_value_stays_one_literal() -> None:
    text = compile_conditions([Condition("region", "=", "x' OR 1=1 --")], FIELDS)
    assert text == "\"region\" = 'x'' OR 1=1 --'"
    assert compile_conditions([], FIELDS) is None


@pytest.mark.parametrize(
    ("condition", "loc", "message"),
    [
        (Condition("nope", "=", 1), ("body", "filters", 0, "field"), "unknown field 'nope'"),
        (Condition("id", "~", 1), ("body", "filters", 0, "operator"), "unknown operator"),
        (Condition("id", "=", None), ("body", "filters", 0, "value"), "use is_null"),
        (Condition("id", "is_null", 1), ("body", "filters", 0, "value"), "takes no value"),
        (Condition("id", "in", []), ("body", "filters", 0, "value"), "non-empty list"),
        (Condition("id", "in", [{"a": 1}]), ("body", "filters", 0, "value", 0), "string"),
        (Condition("id", "=", float("inf")), ("body", "filters", 0, "value"), "finite"),
        (Condition("region", "contains", "5%"), ("body", "filters", 0, "value"), "'%'"),
        (Condition("region", "contains", 5), ("body", "filters", 0, "value"), "a string"),
    ],
)
def test_a_bad_condition_is_named(
    condition: Condition, loc: tuple[object, ...], message: str
) -> None:
    with pytest.raises(Invalid) as caught:
        compile_conditions([condition], FIELDS)
    assert caught.value.errors[0].loc == loc
    assert message in caught.value.errors[0].msg


@pytest.mark.parametrize(
    "title", ["orders", "Orders 2025", "2025", "!!!", "a" * 300, "Ünïcode", "x.y;DROP"]
)
def test_a_title_names_a_valid_data_table(title: str) -> None:
    name = name_for_title(title)
    assert NAME_PATTERN.match(name), name
    assert name == title or name != name_for_title(title + " ")  # the hash tells titles apart


def test_system_columns_clash_with_a_source_column_of_their_name() -> None:
    assert system_column_clash(["id", "region"]) is None
    assert "'__insert_date'" in (system_column_clash(["__insert_date"]) or "")


NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "end", "latest", "word"),
    [
        (ConfigStatus.SUBMITTED, None, None, "active"),
        (ConfigStatus.SUBMITTED, None, RunStatus.COMPLETED, "active"),
        (ConfigStatus.SUBMITTED, None, RunStatus.FAILED, "error"),
        (ConfigStatus.SUBMITTED, None, RunStatus.IN_PROGRESS, "syncing"),
        (ConfigStatus.SUBMITTED, None, RunStatus.ON_HOLD, "syncing"),
        (ConfigStatus.DRAFT, None, RunStatus.FAILED, "inactive"),
        (ConfigStatus.SUBMITTED, NOW - timedelta(days=1), RunStatus.COMPLETED, "inactive"),
        (ConfigStatus.SUBMITTED, NOW - timedelta(days=1), RunStatus.PENDING, "syncing"),
    ],
)
def test_sync_status(
    status: ConfigStatus, end: datetime | None, latest: RunStatus | None, word: str
) -> None:
    assert sync_status(status, None, end, NOW, latest) == word
