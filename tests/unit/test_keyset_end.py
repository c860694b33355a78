"""Where an export job's COPY ends: which keys are read back from the last CSV row or JSON
line, and the row's parsing (CSV quoting, embedded newlines, big integers, composite keys)."""

from __future__ import annotations

from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.plan import ReadPlan
from egress.sources.base import Rendering
from egress.sources.postgresql.keyset import key_in_rows, row_key


def _plan(order: list[str], *fields: tuple[str, str]) -> ReadPlan:
    return ReadPlan(
        table=TableRef("public", "t"),
        fields=[ColumnInfo(n, t) for n, t in fields],
        order=order,
        limit=3,
    )


def test_integer_and_text_keys_are_read_from_the_row_others_are_bounded_first() -> None:
    assert key_in_rows(_plan(["id"], ("label", "string"), ("id", "int64")))
    assert key_in_rows(_plan(["part", "w"], ("w", "string"), ("part", "int16")))
    assert key_in_rows(_plan(["u"], ("u", "uuid"))) and key_in_rows(_plan(["d"], ("d", "decimal")))
    # Written in Egress's own rendering, which is not the cursor's value text.
    assert not key_in_rows(_plan(["day", "n"], ("day", "date"), ("n", "int32")))
    assert not key_in_rows(_plan(["at"], ("at", "timestamptz")))
    # Not written at all (the request's fields leave the key out).
    assert not key_in_rows(_plan(["id"], ("label", "string")))


def test_the_last_row_gives_the_key_in_the_plans_order() -> None:
    plan = _plan(["part", "w"], ("w", "string"), ("n", "int32"), ("part", "int64"))
    row = b'"a, ""quoted""\r\nline",,9000000000000000000\n'
    want = [9000000000000000000, 'a, "quoted"\r\nline']
    assert row_key(row, "utf-8", plan, Rendering.CSV) == want
    assert row_key('"ünï",1,-2\n'.encode(), "utf-8", plan, Rendering.CSV) == [-2, "ünï"]
    assert row_key(b'"",1,0\n', "utf-8", plan, Rendering.CSV) == [0, ""]


def test_the_last_json_line_gives_the_key_in_the_plans_order() -> None:
    plan = _plan(["part", "w"], ("w", "string"), ("n", "int32"), ("part", "int64"))
    line = '{"w":"a, \\"quoted\\"\\r\\nlïne","n":null,"part":9000000000000000000}\n'
    want = [9000000000000000000, 'a, "quoted"\r\nlïne']
    assert row_key(line.encode(), "utf-8", plan, Rendering.JSONL) == want
