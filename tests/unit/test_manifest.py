"""A run's manifest is two-space indented JSON in UTF-8, whatever its values (a small or
large float may be spelled otherwise than Python's json module spells it: 0.00001 for 1e-05)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from egress.db.run_records import ClaimedRun
from egress.domain.plan import KeySelection, plan_from_snapshot
from egress.domain.status import RunKind
from egress.engine.job import Job, Written
from egress.engine.publish import manifest
from egress.sinks.file import WrittenFile
from tests.support.factories import BARE_SPEC


@pytest.mark.parametrize(
    "key",
    [[7, "café", 0.5, None, True], [2**70], [1e-05]],
    ids=["values", "beyond 64 bits", "exponent"],
)
def test_the_manifest_is_indented_json_in_utf8(key: list[Any]) -> None:
    spec = replace(BARE_SPEC, options=replace(BARE_SPEC.options, rows=KeySelection(["id"], [key])))
    claimed = ClaimedRun(
        "run", "ws", "ex", "cfg", 1, RunKind.EXTRACT, 1, "lease", "w", datetime.now(UTC), spec
    )
    job = Job(
        claimed=claimed,
        plan=plan_from_snapshot(spec),
        fmt="csv",
        compression="none",
        ext="csv",
        destination="",
        pattern="{configurationName}",
        configuration_name="café",
        split_by=None,
        data_table=None,
        output=[],
    )
    file = WrittenFile(3, 10, "ab" * 32)
    text = manifest(job, [Written("all", None, "tmp/x", file, "café.csv", "ws/café.csv")])
    body = json.loads(text)
    assert body["parameters"]["rows"]["values"] == [key]
    assert body["files"][0]["name"] == "café.csv" and "café".encode() in text
    indented = json.dumps(body, indent=2, ensure_ascii=False).encode()
    if key != [1e-05]:
        assert text == indented
    number = re.compile(rb"-?[0-9][0-9.e+-]*")
    assert number.sub(b"N", text) == number.sub(b"N", indented)
