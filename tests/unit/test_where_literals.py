"""whereClause literals and comparisons as each source is given them: a decimal literal stays
the exact number it spells; a date or time column is compared as an instant (SQLite) or with a
value whose UTC offset is applied (every source); SQLite's LIKE gets an escape character."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlglot import exp

from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.errors import Invalid
from egress.domain.options import utc_text
from egress.domain.plan import KeySelection, ReadPlan
from egress.query.conditions import Condition, compile_conditions
from egress.query.select import max_statement, select_statement, sqlite_value
from egress.query.where import literal_value, parse_where
from egress.sources.base import SourceError
from egress.sources.sqlite import COMPARISONS, instant_text

FIELDS = [
    ColumnInfo("id", "int64"),
    ColumnInfo("ts", "timestamp"),
    ColumnInfo("d", "date"),
    ColumnInfo("s", "string"),
]
NAMES = [f.name for f in FIELDS]


def _literal(text: str) -> Any:
    tree = parse_where(f"id = {text}", NAMES)
    literal = tree.find(exp.Literal)
    assert literal is not None
    return literal_value(literal)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", 12),
        ("99999999999999999999", 99999999999999999999),
        ("12345678901234567.1", Decimal("12345678901234567.1")),
        ("1.50", Decimal("1.50")),
        ("5.", Decimal("5")),
        (".5", Decimal("0.5")),
        ("1e3", Decimal("1E+3")),
        ("1e-30", Decimal("1E-30")),
        ("'1.5'", "1.5"),
    ],
)
def test_a_literal_is_the_exact_value_it_spells(text: str, value: Any) -> None:
    got = _literal(text)
    assert got == value and type(got) is type(value)


def test_a_number_literal_that_is_no_number_is_refused() -> None:
    with pytest.raises(Invalid, match="'1e' is not a number"):
        parse_where("id = 1e", NAMES)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-01T13:00:00+02:00", "2026-01-01 11:00:00"),
        ("2026-01-01T13:00:00Z", "2026-01-01 13:00:00"),
        ("2026-01-01 13:00:00.5-05:00", "2026-01-01 18:00:00.500000"),
        ("2026-01-01T13:00:00", "2026-01-01T13:00:00"),  # no offset: as it is
        ("2026-01-01", "2026-01-01"),
        ("0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00+14:00"),  # none in UTC
        ("EU", "EU"),
        (7, 7),
    ],
)
def test_utc_text_applies_an_offset_and_drops_it(value: Any, expected: Any) -> None:
    assert utc_text(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-02", "2026-01-02 00:00:00.000000"),
        ("2026-01-02 03:04:05", "2026-01-02 03:04:05.000000"),
        ("2026-01-02 03:04:05.000000", "2026-01-02 03:04:05.000000"),
        ("2024-02-29 23:59:59.999999", "2024-02-29 23:59:59.999999"),
        ("2026-02-29", None),  # the canonical shape, but no such day
        ("2026-01-01 24:00:00", None),
        ("0000-01-01", None),
        ("2026-01-01T12:00:00Z", "2026-01-01 12:00:00.000000"),
        ("2026-01-01 07:00:00-05:00", "2026-01-01 12:00:00.000000"),
        ("2026-01-01 12:00:00.5", "2026-01-01 12:00:00.500000"),
        (1700000000.5, "2023-11-14 22:13:20.500000"),
        ("not a date", None),
        (b"\x00", None),
        (2_000_000, None),  # also a Julian day number: ambiguous, as the read says
        ("2026-01-01 12:00:00.1234567", None),  # finer than the read keeps
        (True, None),
    ],
)
def test_egress_instant_reads_as_the_run_reads(value: Any, expected: str | None) -> None:
    assert instant_text(value) == expected


def test_sqlite_binds_a_decimal_as_a_real() -> None:
    assert sqlite_value(Decimal("1.5")) == 1.5 and isinstance(sqlite_value(Decimal("1.5")), float)


def _plan(where: str | None = None, keys: KeySelection | None = None) -> ReadPlan:
    return ReadPlan(TableRef("main", "t"), FIELDS[:1], FIELDS, where=where, keys=keys)


def test_sqlite_compares_dates_and_times_as_instants() -> None:
    plan = _plan(
        "ts BETWEEN '2026-01-01' AND '2026-01-02T00:00:00+01:00' AND date(ts) = '2026-01-01'"
        " AND d IN ('2026-01-02', NULL) AND s > '2026' AND s LIKE 'a\\_%'",
        KeySelection(["ts"], [["2026-01-01T12:00:00.000000"]]),
    )
    statement = select_statement(plan, "sqlite", convert=sqlite_value, rules=COMPARISONS)
    where = statement.sql.split(" WHERE ", 1)[1]
    assert where == (
        '(EGRESS_INSTANT("ts") BETWEEN :p0 AND :p1'
        ' AND EGRESS_INSTANT(DATE(EGRESS_INSTANT("ts"))) = :p2'
        ' AND EGRESS_INSTANT("d") IN (:p3, NULL) AND "s" > :p4 AND "s" LIKE :p6 ESCAPE :p5)'
        ' AND EGRESS_INSTANT("ts") IN (:p7)'
    )
    assert list(statement.params.values()) == [
        "2026-01-01 00:00:00.000000",
        "2026-01-01 23:00:00.000000",
        "2026-01-01 00:00:00.000000",
        "2026-01-02 00:00:00.000000",
        "2026",
        "\\",
        "a\\_%",
        "2026-01-01 12:00:00.000000",
    ]
    assert max_statement(plan, "ts", "sqlite", COMPARISONS) == (
        'SELECT MAX(EGRESS_INSTANT("ts")) FROM "main"."t"'
    )
    assert max_statement(plan, "id", "sqlite", COMPARISONS) == 'SELECT MAX("id") FROM "main"."t"'


def test_sqlite_refuses_a_value_that_is_no_date_or_time() -> None:
    with pytest.raises(SourceError, match="'yesterday' is compared with a date or time column"):
        select_statement(_plan("ts > 'yesterday'"), "sqlite", rules=COMPARISONS)


def test_other_sources_get_a_value_in_utc_and_their_own_columns() -> None:
    plan = _plan(
        "ts < '2026-01-01T13:00:00+02:00' AND s = '2026-01-01T13:00:00+02:00'"
        " AND s LIKE 'a\\_%' AND id > 1.5",
        KeySelection(["ts"], [["2026-01-01T12:00:00Z"]]),
    )
    statement = select_statement(plan, "postgres")
    assert statement.sql.split(" WHERE ", 1)[1] == (
        '("ts" < %(p0)s AND "s" = %(p1)s AND "s" LIKE %(p2)s AND "id" > %(p3)s)'
        ' AND "ts" IN (%(p4)s)'
    )
    assert list(statement.params.values()) == [
        "2026-01-01 11:00:00",
        "2026-01-01T13:00:00+02:00",  # a text column: the text as it is
        "a\\_%",
        Decimal("1.5"),
        "2026-01-01 12:00:00",
    ]


def test_every_literal_stays_a_parameter_where_sqlite_rewrites() -> None:
    plan = _plan(
        "date(coalesce(ts, '+1 day')) IN ('2026-01-02', d) AND (s LIKE 'x') = (s NOT ILIKE 'y')"
    )
    statement = select_statement(plan, "sqlite", convert=sqlite_value, rules=COMPARISONS)
    assert "'" not in statement.sql
    assert sorted(map(str, statement.params.values())) == sorted(
        ["+1 day", "2026-01-02 00:00:00.000000", "x", "y", "\\", "\\"]
    )


# ---- a text literal compared with a boolean column ------------------------------------------

TYPED = [*FIELDS, ColumnInfo("b", "boolean"), ColumnInfo("t", "string")]


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("b = 'true'", "b = TRUE"),
        ("b = 'TRUE'", "b = TRUE"),
        ("b != 'false'", "b <> FALSE"),
        ("b <> 'False'", "b <> FALSE"),
        ("'true' = (b)", "TRUE = (b)"),
        ("b IN ('true', 'FALSE')", "b IN (TRUE, FALSE)"),
        ("b NOT IN ('true', NULL)", "NOT b IN (TRUE, NULL)"),
        ("b BETWEEN 'false' AND 'true'", "b BETWEEN FALSE AND TRUE"),
        ("coalesce(b, 'false') = 'true'", "COALESCE(b, FALSE) = TRUE"),
        ("b = true AND NOT b = 'false'", "b = TRUE AND NOT b = FALSE"),
        ("t = 'true' AND s IN ('false')", "t = 'true' AND s IN ('false')"),  # text stays text
    ],
)
def test_a_text_literal_compared_with_a_boolean_column_is_a_boolean(text: str, read: str) -> None:
    """MySQL's BOOLEAN is a TINYINT(1) that reads 'true' as 0 (b = 'true' selected the false
    rows) and SQLite stores 1 and 0 (none): the tree every source renders holds TRUE/FALSE."""
    assert parse_where(text, TYPED).sql() == read


@pytest.mark.parametrize(
    ("text", "literal", "part"),
    [
        ("b = 'yes'", "'yes'", "b = 'yes'"),
        ("b = 't'", "'t'", "b = 't'"),
        ("b = '1'", "'1'", "b = '1'"),
        ("b = ' true'", "' true'", "b = ' true'"),
        ("b = ''", "''", "b = ''"),
        ("b IN ('true', 'on')", "'on'", "b IN ('true', 'on')"),
        ("b NOT IN ('false', 'no')", "'no'", "b IN ('false', 'no')"),
        ("b BETWEEN 'false' AND 'y'", "'y'", "b BETWEEN 'false' AND 'y'"),
        ("coalesce(b, 'n') = true", "'n'", "COALESCE(b, 'n')"),
    ],
)
def test_a_text_literal_no_boolean_is_spelt_as_is_refused_naming_the_column(
    text: str, literal: str, part: str
) -> None:
    with pytest.raises(Invalid) as err:
        parse_where(text, TYPED)
    (error,) = err.value.errors
    assert error.loc == ("body", "where_clause")
    assert error.msg == (
        f"{literal} cannot be compared with boolean column 'b': write 'true' or 'false'"
        f" (in any letter case), or TRUE or FALSE (in {part!r})"
    )


def test_without_the_columns_types_a_boolean_literal_is_left_to_the_run() -> None:
    assert parse_where("b = 'yes'", [f.name for f in TYPED]).sql() == "b = 'yes'"


@pytest.mark.parametrize(
    ("dialect", "column"),
    [("postgres", '"b"'), ("mysql", "`b`"), ("sqlite", '"b"')],
)
def test_every_dialect_compares_a_boolean_column_with_a_boolean(dialect: str, column: str) -> None:
    plan = ReadPlan(
        TableRef("main", "t"),
        TYPED[:1],
        TYPED,
        where="b = 'true' AND b <> 'FALSE' AND b IN ('true') AND t = 'true'",
    )
    statement = select_statement(plan, dialect)
    assert statement.sql.split(" WHERE ", 1)[1] == (
        f"({column} = TRUE AND {column} <> FALSE AND {column} IN (TRUE)"
        f" AND {column.replace('b', 't')} = {'%(p0)s' if dialect == 'postgres' else ':p0'})"
    )
    assert list(statement.params.values()) == ["true"]  # only the text column's text


def test_a_structured_condition_on_a_boolean_field_is_read_the_same_way() -> None:
    text = compile_conditions([Condition("b", "=", "true"), Condition("b", "in", ["False"])], TYPED)
    assert text == "\"b\" = 'true' AND \"b\" IN ('False')"
    assert parse_where(text, TYPED).sql() == '"b" = TRUE AND "b" IN (FALSE)'
    with pytest.raises(Invalid) as err:
        compile_conditions([Condition("b", "=", "yes")], TYPED)
    (error,) = err.value.errors
    assert error.loc == ("body", "filters")
    assert error.msg.startswith("'yes' cannot be compared with boolean column 'b'")
