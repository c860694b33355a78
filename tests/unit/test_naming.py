"""File names and destination paths built from user input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from egress.domain.errors import Invalid
from egress.domain.naming import (
    DEFAULT_FILE_NAME_PATTERN,
    NameParts,
    file_extension,
    normalize_destination_path,
    render_file_name,
    sanitize_segment,
    storage_key,
    validate_pattern,
)

PARTS = NameParts(
    configuration_name="daily_orders",
    started_at=datetime(2026, 5, 28, 14, 0, 0, tzinfo=UTC),
    run=1,
    ext="csv",
    execution_id="e1",
)


def test_default_pattern_matches_the_documented_name() -> None:
    assert render_file_name(DEFAULT_FILE_NAME_PATTERN, PARTS) == (
        "daily_orders_2026-05-28_14-00-00_v1.csv"
    )


def test_custom_pattern_with_time_format_and_execution_id() -> None:
    pattern = "{configurationName}-{executionStartUtc:%Y%m%d}-{executionId}-r{run}.{ext}"
    validate_pattern(pattern)
    assert render_file_name(pattern, PARTS) == "daily_orders-20260528-e1-r1.csv"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "_._etc_passwd"),
        ("a/b\\c", "a_b_c"),
        ("..hidden", "hidden"),
        ("", "_"),
        ("Zürich orders", "Zürich_orders"),
        ("x" * 300, "x" * 200),
        ("a\x00b\nc", "a_b_c"),
    ],
)
def test_sanitize_segment(raw: str, expected: str) -> None:
    assert sanitize_segment(raw) == expected


def test_sanitized_segments_never_contain_separators_or_dot_dot() -> None:
    for raw in ["../x", "a/../b", "..", "....//....", "a\\..\\b", "/abs"]:
        out = sanitize_segment(raw)
        assert "/" not in out and "\\" not in out and ".." not in out
        assert not out.startswith(".")


def test_configuration_name_with_separators_cannot_escape() -> None:
    parts = NameParts("../../x", PARTS.started_at, 1, "csv", "e")
    name = render_file_name(DEFAULT_FILE_NAME_PATTERN, parts)
    assert "/" not in name and ".." not in name


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{nope}.{ext}", "unknown placeholder {nope}"),
        ("{run.__class__}.{ext}", "unknown placeholder"),
        ("{run!r}.{ext}", "conversions"),
        ("{run:>5}.{ext}", "only {executionStartUtc} takes a format"),
        ("{configurationName}", "must contain {ext}"),
        ("{configurationName", "malformed pattern"),
    ],
)
def test_bad_patterns_are_refused(pattern: str, message: str) -> None:
    with pytest.raises(Invalid) as err:
        validate_pattern(pattern)
    assert message in err.value.detail
    assert err.value.errors[0].loc == ("body", "fileNamePattern")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("exports/orders", "exports/orders"),
        ("/exports//orders/", "exports/orders"),
        ("./a/./b", "a/b"),
        ("a\\b", "a/b"),
        ("", ""),
        ("we ird/na:me", "we_ird/na_me"),
    ],
)
def test_destination_paths_are_normalised(raw: str, expected: str) -> None:
    assert normalize_destination_path(raw) == expected


def test_destination_path_cannot_climb() -> None:
    with pytest.raises(Invalid) as err:
        normalize_destination_path("exports/../../etc")
    assert err.value.errors[0].loc == ("body", "destination", "path")


def test_extensions_and_keys() -> None:
    assert file_extension("csv", "none") == "csv"
    assert file_extension("jsonl", "gzip") == "jsonl.gz"
    assert file_extension("parquet", "none") == "parquet"
    assert storage_key("", "f.csv") == "f.csv"
    assert storage_key("a/b", "f.csv") == "a/b/f.csv"
