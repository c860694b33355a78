"""The pure rules of bulk export: seed statuses from run statuses, keyset SQL, the export
spec's stored form (their signed file links: tests/unit/test_signed_links.py)."""

from __future__ import annotations

import pytest

from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.export import (
    ExportSpec,
    RequestStatus,
    decode_cursor,
    encode_cursor,
    request_status,
    unenforced_key_reason,
)
from egress.domain.plan import ReadPlan
from egress.domain.spec import ExecutionSpec
from egress.domain.status import RunStatus
from egress.query.select import select_statement

S = RequestStatus


@pytest.mark.parametrize(
    ("status", "attempt", "seed"),
    [
        (RunStatus.PENDING, 1, S.PENDING),
        (RunStatus.ON_HOLD, 1, S.PENDING),
        (RunStatus.PENDING, 2, S.IN_PROGRESS),  # waiting for a retry after a failed attempt
        (RunStatus.IN_PROGRESS, 1, S.IN_PROGRESS),
        (RunStatus.COMPLETED, 1, S.COMPLETED),
        (RunStatus.COMPLETED_NO_DATA, 1, S.COMPLETED),
        (RunStatus.FAILED, 3, S.FAILED),
        (RunStatus.CANCELLED, 1, S.FAILED),
    ],
)
def test_seed_statuses(status: RunStatus, attempt: int, seed: RequestStatus) -> None:
    assert request_status(status, attempt) is seed


def test_keyset_reads_after_the_key_in_key_order() -> None:
    fields = [ColumnInfo("a", "int64"), ColumnInfo("b", "string"), ColumnInfo("v", "string")]
    plan = ReadPlan(TableRef("s", "t"), fields, order=["a", "b"], after=[1, "x"], limit=3)
    stmt = select_statement(plan, "sqlite")
    assert stmt.sql.endswith(
        'WHERE ("a", "b") > (:p0, :p1) ORDER BY "s"."t"."a", "s"."t"."b" LIMIT 3'
    )
    assert stmt.params == {"p0": 1, "p1": "x"}
    single = ReadPlan(TableRef(None, "t"), fields, order=["a"], after=None, limit=2)
    assert select_statement(single, "postgres").sql.endswith('FROM "t" ORDER BY "t"."a" LIMIT 2')


def test_the_spec_round_trips_and_cursors_are_bound_to_workspace_and_object() -> None:
    execution = ExecutionSpec.from_json(
        {"template": {"sourceName": "t", "fields": [{"name": "id", "type": "int64"}]}}
    )
    spec = ExportSpec("t-1", "template", ["id"], [5], 100, execution)
    assert ExportSpec.from_json(spec.to_json()) == spec
    raw = encode_cursor("ws1", "t-1", [5])
    assert decode_cursor(raw, "ws1", "t-1", 1) == [5]
    assert decode_cursor(raw, "ws2", "t-1", 1) is None
    assert decode_cursor(raw, "ws1", "t-2", 1) is None
    assert decode_cursor(raw, "ws1", "t-1", 2) is None
    assert decode_cursor(b"not json", "ws1", "t-1", 1) is None


def test_only_enforced_keys_page() -> None:
    assert unenforced_key_reason("table", ["id"], True) is None
    assert "no primary key" in (unenforced_key_reason("table", [], True) or "")
    assert "not enforced" in (unenforced_key_reason("query", ["id"], False) or "")
    assert "does not enforce" in (unenforced_key_reason("table", ["id"], False) or "")
