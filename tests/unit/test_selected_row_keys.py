"""Selected rows (``rows`` with ``selectAll: false``) against their key fields' logical types,
and ``selectAll: true`` with an empty ``rows`` (seed 002's own example body).

Before 2026-12-04 a key value of the wrong JSON type was accepted: PostgreSQL then failed the
run with its own error (``invalid input syntax for type integer: "row1"``, ``operator does not
exist: integer = boolean``) and SQLite read ``true`` as 1, selecting id 1 in a COMPLETED run."""

from __future__ import annotations

from typing import Any

import pytest

from egress.domain.catalog import ColumnInfo
from egress.domain.errors import Invalid
from egress.domain.options import selection

FIELDS = [
    ColumnInfo("id", "int64", False),
    ColumnInfo("small", "int16"),
    ColumnInfo("mid", "int32"),
    ColumnInfo("ratio", "float64"),
    ColumnInfo("amount", "decimal(10,2)"),
    ColumnInfo("big", "decimal(20,0)"),
    ColumnInfo("paid", "boolean"),
    ColumnInfo("name", "string"),
    ColumnInfo("doc", "json"),
    ColumnInfo("u", "uuid"),
    ColumnInfo("day", "date"),
    ColumnInfo("at", "timestamp"),
    ColumnInfo("tz", "timestamptz"),
    ColumnInfo("clock", "time"),
    ColumnInfo("span", "duration"),
]
UUID = "0b8e3c8a-3f5e-4a53-9b0e-2f1c0d9e8a77"


def _key(field: str, value: Any) -> Any:
    """The value ``selection`` keeps for a one-field key ``field``."""
    found = selection([{field: value}], False, FIELDS, [field], 10)
    assert found is not None
    assert found[0] == [field]
    return found[1][0][0]


def _refused(field: str, value: Any) -> str:
    """The message for ``value`` in the second row, as the key and (no primary key) as a
    matched field alike."""
    messages = []
    for primary_key in ([field], []):
        with pytest.raises(Invalid) as err:
            selection([{field: None}, {field: value}], False, FIELDS, primary_key, 10)
        assert err.value.errors[0].loc == ("body", "rows", 1, field)
        messages.append(err.value.errors[0].msg)
    assert messages[0] == messages[1]
    return messages[0]


# ------------------------------------------------------------------ selectAll with empty rows
@pytest.mark.parametrize("rows", [None, []])
def test_select_all_takes_absent_or_empty_rows(rows: list[dict[str, Any]] | None) -> None:
    assert selection(rows, True, FIELDS, ["id"], 10) is None


def test_select_all_with_rows_given_is_still_refused() -> None:
    with pytest.raises(Invalid) as err:
        selection([{"id": 1}], True, FIELDS, ["id"], 10)
    assert err.value.errors[0].loc == ("body", "rows")
    assert err.value.errors[0].msg == "must be empty or omitted when selectAll is true"


@pytest.mark.parametrize("select_all", [False, None])
def test_empty_rows_without_select_all_true_is_refused(select_all: bool | None) -> None:
    with pytest.raises(Invalid) as err:
        selection([], select_all, FIELDS, ["id"], 10)
    assert err.value.errors[0].loc == ("body", "rows")
    assert "required (and not empty)" in err.value.errors[0].msg


# ------------------------------------------------------------------------- accepted values
@pytest.mark.parametrize(
    ("field", "value", "kept"),
    [
        ("id", 17, 17),
        ("id", -3, -3),
        ("id", "17", 17),  # plain digits read as the integer they spell
        ("id", "-017", -17),
        ("id", "-" + "0" * 5000 + "1", -1),
        ("id", "-0", 0),
        ("id", 2**63 - 1, 2**63 - 1),
        ("small", -32768, -32768),
        ("mid", "2147483647", 2147483647),
        ("ratio", 1.5, 1.5),
        ("ratio", 2, 2),
        ("ratio", "1.5e3", "1.5e3"),
        ("amount", 12.5, 12.5),
        ("amount", "10.50", "10.50"),  # as data tables give decimals: exact text
        ("big", "18446744073709551615", "18446744073709551615"),
        ("paid", True, True),
        ("paid", False, False),
        ("name", "row1", "row1"),
        ("name", "", ""),
        ("doc", '{"a": 1}', '{"a": 1}'),
        ("u", UUID, UUID),
        ("u", UUID.upper().replace("-", ""), UUID.upper().replace("-", "")),
        ("day", "2026-01-31", "2026-01-31"),
        ("at", "2026-01-01T14:00:00+02:00", "2026-01-01T14:00:00+02:00"),
        ("at", 1767398400, 1767398400),  # SQLite keeps times as unix seconds too
        ("tz", "2026-01-01 12:00:00.5", "2026-01-01 12:00:00.5"),
        ("clock", "12:30:00", "12:30:00"),
        ("span", "-01:00:00", "-01:00:00"),
    ],
)
def test_key_values_that_fit_the_field_are_kept(field: str, value: Any, kept: Any) -> None:
    found = _key(field, value)
    assert found == kept and type(found) is type(kept)


@pytest.mark.parametrize("field", [f.name for f in FIELDS])
def test_null_is_allowed_for_every_type(field: str) -> None:
    """It matches no record on any source (SQL's = is never true for NULL)."""
    assert _key(field, None) is None


# ------------------------------------------------------------------------- refused values
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id", "row1", "'row1' is not an integer (field 'id' is int64)"),
        ("id", True, "true is not an integer (field 'id' is int64)"),
        ("id", False, "false is not an integer (field 'id' is int64)"),
        ("id", 1.5, "1.5 is not an integer (field 'id' is int64)"),
        ("id", 17.0, "17.0 is not an integer (field 'id' is int64)"),
        ("id", "1.0", "'1.0' is not an integer (field 'id' is int64)"),
        ("id", " 17", "' 17' is not an integer (field 'id' is int64)"),
        ("id", "+17", "'+17' is not an integer (field 'id' is int64)"),
        ("id", "1_000", "'1_000' is not an integer (field 'id' is int64)"),
        ("id", "\u0661\u0667", "is not an integer (field 'id' is int64)"),  # Arabic-Indic 17
        ("id", "", "'' is not an integer (field 'id' is int64)"),
        ("id", 2**63, "is out of range (field 'id' is int64)"),
        (
            "id",
            "9" * 5000,
            f"{'9' * 40!r}… (5000 characters) is out of range (field 'id' is int64)",
        ),
        ("small", 32768, "32768 is out of range (field 'small' is int16): -32768 to 32767"),
        ("mid", "-2147483649", "is out of range (field 'mid' is int32)"),
        ("ratio", True, "true is not a finite number (field 'ratio' is float64)"),
        ("ratio", "abc", "'abc' is not a finite number (field 'ratio' is float64)"),
        ("ratio", float("inf"), "inf is not a finite number"),
        ("ratio", float("nan"), "nan is not a finite number"),
        ("ratio", "NaN", "'NaN' is not a finite number"),
        ("ratio", "1e400", "'1e400' is not a finite number"),
        ("amount", False, "false is not a finite number (field 'amount' is decimal(10,2))"),
        ("amount", "12,5", "'12,5' is not a finite number"),
        ("paid", 1, "1 is not a boolean (field 'paid' is boolean): write true or false"),
        ("paid", 0, "0 is not a boolean"),
        ("paid", "true", "'true' is not a boolean"),
        ("name", 17, "17 is not a string (field 'name' is string)"),
        ("name", True, "true is not a string (field 'name' is string)"),
        ("doc", 1, "1 is not a string (field 'doc' is json)"),
        ("u", "row1", "'row1' is not a UUID (field 'u' is uuid)"),
        ("u", 7, "7 is not a string (field 'u' is uuid)"),
        ("day", True, "true is not a date or time (field 'day' is date)"),
        ("at", False, "false is not a date or time (field 'at' is timestamp)"),
        ("span", True, "true is not a date or time (field 'span' is duration)"),
    ],
)
def test_key_values_that_do_not_fit_the_field_are_422(field: str, value: Any, message: str) -> None:
    assert message in _refused(field, value)


def test_the_problem_names_the_row_and_the_field() -> None:
    with pytest.raises(Invalid) as err:
        selection([{"id": 1}, {"id": 2}, {"id": "row1"}], False, FIELDS, ["id"], 10)
    assert err.value.errors[0].loc == ("body", "rows", 2, "id")
    assert err.value.detail == "body.rows.2.id: 'row1' is not an integer (field 'id' is int64)"


def test_every_key_field_of_a_composite_key_is_checked() -> None:
    found = selection([{"id": "7", "name": "a"}], False, FIELDS, ["id", "name"], 10)
    assert found == (["id", "name"], [[7, "a"]])
    with pytest.raises(Invalid) as err:
        selection([{"id": 7, "name": 7}], False, FIELDS, ["id", "name"], 10)
    assert err.value.errors[0].loc == ("body", "rows", 0, "name")


def test_fields_other_than_the_key_are_not_checked() -> None:
    """With a primary key, other fields are ignored (rows copied from a data table)."""
    found = selection([{"id": 1, "paid": "maybe", "u": 3}], False, FIELDS, ["id"], 10)
    assert found == (["id"], [[1]])
