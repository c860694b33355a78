"""Sub-extract ids and the split router: one part per value, never two values in one part."""

from __future__ import annotations

import re
from typing import cast

import pyarrow as pa
import pytest

from egress.domain.split import sub_extract_id
from egress.sinks import split
from egress.sinks.file import FileSink
from egress.sinks.split import PartsClash, SplitRouter

# Same 40-character slug and the same first 6 hex digits of sha256 (c681bd): one id before.
LONG_A = "product-category-electronics-item-000000000822"
LONG_B = "product-category-electronics-item-000000002892"


def test_ids_whose_slug_is_the_value_are_kept() -> None:
    """Clients hold these ids: a value that is its own slug keeps ``<value>-<6 hex>``."""
    assert sub_extract_id("EU") == "EU-9170a8"
    assert sub_extract_id("v") == "v-4c9448"
    assert sub_extract_id("2026-01-01") == "2026-01-01-aa939a"
    assert sub_extract_id(None) == "null"


def test_ids_whose_slug_lost_part_of_the_value_carry_a_long_hash() -> None:
    assert sub_extract_id("a b") == "a-b-c8687a08aa5d6ed2"
    assert sub_extract_id("") == "v-e3b0c44298fc1c14"
    assert sub_extract_id(LONG_A) == "product-category-electronics-item-000000-c681bd008163640f"
    assert sub_extract_id(LONG_B) == "product-category-electronics-item-000000-c681bdc659715221"


def test_distinct_values_get_distinct_url_safe_ids() -> None:
    values = [
        *(f"{LONG_A[:40]}{i:06d}" for i in range(5000)),  # a 6-hex hash alone collides here
        "a b",
        "a/b",
        "a-b",
        "a--b",
        "-a-b",
        "a_b",
        "",
        "v",
        "null",
        "NULL",
        "-2",
        "2",
        "1.5",
        "-1.5",
        "15",
        "Zürich/CH",
        "Z-rich-CH",
        "EU",
        "eu",
        None,
    ]
    ids = [sub_extract_id(v) for v in values]
    assert len(set(ids)) == len(values)
    assert all(re.fullmatch(r"[A-Za-z0-9-]+", i) for i in ids)
    assert [sub_extract_id(v) for v in values] == ids  # the same on every run


class _Sink:
    def __init__(self) -> None:
        self.batches: list[pa.RecordBatch] = []

    def write_many(self, batches: list[pa.RecordBatch]) -> None:
        self.batches.extend(batches)


def _router(sinks: dict[str | None, _Sink]) -> SplitRouter:
    def open_sink(pid: str, value: str | None) -> FileSink:
        sinks[value] = _Sink()
        return cast(FileSink, sinks[value])

    return SplitRouter("k", ["id", "k"], 10, open_sink, flush_rows=1)


def _batch(ids: list[int], keys: list[str | None]) -> pa.RecordBatch:
    return pa.record_batch({"id": ids, "k": keys})


def test_the_router_keys_parts_by_value() -> None:
    sinks: dict[str | None, _Sink] = {}
    router = _router(sinks)
    router.write(router.group(_batch([1, 2, 3, 4, 5], [LONG_A, LONG_B, LONG_A, None, LONG_B])))
    router.close()
    rows = {v: sorted(r["id"] for b in s.batches for r in b.to_pylist()) for v, s in sinks.items()}
    assert rows == {LONG_A: [1, 3], LONG_B: [2, 5], None: [4]}
    assert {v: p.sub_extract_id for v, p in router.parts.items()} == {
        v: sub_extract_id(v) for v in (LONG_A, LONG_B, None)
    }


def test_two_values_with_one_id_fail_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last check: were two values ever to get one id, neither shares the other's part."""
    monkeypatch.setattr(split, "sub_extract_id", lambda value: "same-000000")
    sinks: dict[str | None, _Sink] = {}
    router = _router(sinks)
    with pytest.raises(PartsClash) as raised:
        router.write(router.group(_batch([1, 2], [LONG_A, LONG_B])))
    assert f"{LONG_A!r} and {LONG_B!r}" in str(raised.value)
    assert "'same-000000'" in str(raised.value)
    assert list(sinks) == [LONG_A]  # the second value's part was never opened
