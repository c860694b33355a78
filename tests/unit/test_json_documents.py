"""A JSON column's value in JSONL: Python's compact JSON of the document, its numbers exactly
as the source wrote them (Python's float would round or overflow them)."""

from __future__ import annotations

import json

import pytest

from egress.sinks.render import json_document


def test_numbers_keep_the_sources_digits() -> None:
    text = (
        '{"x": 123.456789012345678901, "y": 1.10, "w": 0.0000010, "e": 2e-5,'
        ' "big": 123456789012345678901234567890, "huge": 1E400, "i": -7}'
    )
    assert json_document(text, "j") == (
        '{"x":123.456789012345678901,"y":1.10,"w":0.0000010,"e":2e-5,'
        '"big":123456789012345678901234567890,"huge":1E400,"i":-7}'
    )


def test_an_integer_past_pythons_digit_limit_is_kept() -> None:
    digits = "9" * 5000
    assert json_document(f"[{digits}, 1.5]", "j") == f"[{digits},1.5]"


def test_the_rest_is_pythons_compact_json() -> None:
    """Whitespace dropped, strings re-escaped as json.dumps escapes them (non-ASCII raw), a
    repeated key with each of its values in order (a dict keeps only the last: the source's
    value would change), scalars and empty containers as they are."""
    text = '{ "a" : 1.50 ,\n "a" : "\\u00e9\\t\\/" , "b" : [ true , null , { } ] , "c": -0 }'
    assert json_document(text, "j") == '{"a":1.50,"a":"é\\t/","b":[true,null,{}],"c":0}'
    nested = '{"k": {"x": 1, "x": 2}, "k": [{"y": 1, "y": 1}]}'
    assert json_document(nested, "j") == '{"k":{"x":1,"x":2},"k":[{"y":1,"y":1}]}'
    for scalar in ("42", '"x"', "[]", "true", "null", "-1.0e+3"):
        assert json_document(scalar, "j") == scalar


def test_a_document_holding_the_mark_is_not_confused_by_it() -> None:
    """Numbers travel behind a private-use character absent from the document."""
    for text in ('["\ue000", 1.5]', '["\\ue000 1", 1.5]', '["\\uE000", 2.25, {"k": 3.0}]'):
        assert json_document(text, "j") == json.dumps(
            json.loads(text), ensure_ascii=False, separators=(",", ":")
        )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("NaN", "holds NaN, which is not a JSON value"),
        ('{"a": -Infinity}', "holds -Infinity, which is not a JSON value"),
        ("{bad", "holds text that is not JSON (Expecting property name enclosed in double quotes"),
        ("", "holds text that is not JSON (Expecting value at character 0)"),
    ],
)
def test_what_is_not_json_fails_naming_the_column(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match="column 'j' ") as caught:
        json_document(text, "j")
    assert problem in str(caught.value)
