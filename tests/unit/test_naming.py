"""File names and destination paths built from user input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from egress.domain.errors import Invalid
from egress.domain.naming import (
    DEFAULT_FILE_NAME_PATTERN,
    MAX_FILE_NAME_BYTES,
    NameParts,
    file_extension,
    manifest_name,
    name_candidates,
    normalize_destination_path,
    render_file_name,
    sanitize_segment,
    split_label,
    storage_key,
    truncate_utf8,
    validate_pattern,
    varies_per_run,
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
        ("{{ext}}", "must contain {ext}"),
        ("{ext}", "needs a name before the extension"),
        (".{ext}", "needs a name before the extension"),
        ("{ext}.{ext}", "needs a name before the extension"),
        ("..{ext}", "needs a name before the extension"),
        ("_.{ext}", "needs a name before the extension"),
    ],
)
def test_bad_patterns_are_refused(pattern: str, message: str) -> None:
    with pytest.raises(Invalid) as err:
        validate_pattern(pattern)
    assert message in err.value.detail
    assert err.value.errors[0].loc == ("body", "file_name_pattern")


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
    assert storage_key("ws1", "", "f.csv") == "ws1/f.csv"
    assert storage_key("ws1", "a/b", "f.csv") == "ws1/a/b/f.csv"


def test_keys_of_two_workspaces_never_meet() -> None:
    assert storage_key("ws-a", "out", "f.csv") != storage_key("ws-b", "out", "f.csv")
    assert not storage_key("ws-b", "out", "f.csv").startswith("ws-a/")


@pytest.mark.parametrize(
    "pattern",
    [
        "{configurationName}.{ext}",
        "x.{ext}",
        "{run}.{ext}",
        "{configurationName}_{ext}",
        "{executionStartUtc}.{ext}",
        "{{literal}}-{configurationName}.{ext}",
    ],
)
def test_patterns_with_a_stem_are_accepted(pattern: str) -> None:
    validate_pattern(pattern)


def _bytes(name: str) -> int:
    return len(name.encode())


@pytest.mark.parametrize(
    "name",
    ["x" * 300, "Zürich" * 60, "日本語" * 100, "😀" * 90, "a" * 237 + "é" * 5],
)
@pytest.mark.parametrize("ext", ["csv", "jsonl.gz", "parquet"])
def test_long_names_keep_their_extension_and_fit(name: str, ext: str) -> None:
    parts = NameParts(name, PARTS.started_at, 13, ext, "e1")
    rendered = render_file_name(DEFAULT_FILE_NAME_PATTERN, parts)
    assert rendered.endswith(f"_v13.{ext}") or rendered.endswith(f".{ext}")
    assert _bytes(rendered) <= MAX_FILE_NAME_BYTES <= 255
    assert rendered.encode().decode() == rendered  # no character cut in half
    for candidate in name_candidates(rendered, ext, "3f1a2b3c-0000", attempt=2):
        assert candidate.endswith(f".{ext}") and _bytes(candidate) <= MAX_FILE_NAME_BYTES


def test_a_long_pattern_keeps_its_extension() -> None:
    pattern = "{configurationName}_" + "p" * 380 + ".{ext}"
    validate_pattern(pattern)
    rendered = render_file_name(pattern, PARTS)
    assert rendered.startswith("daily_orders_ppp") and rendered.endswith(".csv")
    assert _bytes(rendered) <= MAX_FILE_NAME_BYTES


def test_shortened_names_stay_distinct() -> None:
    """Two split parts whose values differ only beyond the cut still get two names."""
    base = "n" * 190
    names = {
        render_file_name(DEFAULT_FILE_NAME_PATTERN, NameParts(f"{base}_{value}", *_rest()))
        for value in ("x" * 100 + "EU", "x" * 100 + "US")
    }
    assert len(names) == 2


def _rest() -> tuple[datetime, int, str, str]:
    return PARTS.started_at, 1, "csv", "e1"


def test_short_names_are_unchanged() -> None:
    assert render_file_name("{configurationName}.{ext}", PARTS) == "daily_orders.csv"
    assert render_file_name("{configurationName}_{ext}", PARTS) == "daily_orders_csv"
    assert name_candidates("a.csv", "csv", "3f1a2b3c-99", 2) == [
        "a.csv",
        "a_3f1a2b3c.csv",
        "a_3f1a2b3c_a2.csv",
    ]


def test_manifest_names_fit_too() -> None:
    base = "m" * 236
    first = name_candidates(f"{base}.manifest.json", "manifest.json", "e", 1)[0]
    assert first.endswith(".manifest.json") and _bytes(first) <= MAX_FILE_NAME_BYTES


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [("abc", 2, "ab"), ("éé", 3, "é"), ("😀x", 3, ""), ("😀x", 4, "😀"), ("a", 0, "")],
)
def test_truncate_utf8_never_cuts_a_character(value: str, limit: int, expected: str) -> None:
    assert truncate_utf8(value, limit) == expected


def test_split_values_that_sanitise_alike_get_distinct_stable_labels() -> None:
    values = ["a/b", "a b", "a_b", "a?b", "null", None]
    labels = [split_label(v) for v in values]
    assert len(set(labels)) == len(values)
    assert labels[2] == "a_b" and labels[5] == "null"  # already safe: the value itself
    assert all(label.startswith("a_b_") and len(label) == 20 for label in labels[:2])
    assert labels[4].startswith("null_") and labels[3].startswith("a_b_")
    assert [split_label(v) for v in reversed(values)] == labels[::-1]  # order plays no part
    assert all(sanitize_segment(label) == label for label in labels)


def test_a_safe_value_keeps_its_name_unless_it_is_shaped_like_a_hashed_label() -> None:
    """``a/b``'s label used to be ``a_b_c14cddc0``, which is also the safe value
    ``a_b_c14cddc0`` itself: the two parts got one name. A hashed label now ends with 16 hex
    digits, and a safe value shaped like that is hashed too."""
    assert split_label("a/b") == "a_b_c14cddc033f64b9d"  # the same on every run
    for safe in (
        "EU",
        "a_b",
        "a_b_c14cddc0",
        "report_20240101",
        "Zürich",
        "1.5",
        "x_ABCDEF0123456789",
    ):
        assert split_label(safe) == safe
    shaped = split_label("a/b")
    assert split_label(shaped) == f"{shaped}_caef71eb08f6b3ee"
    values = ["a/b", "a_b_c14cddc0", shaped, split_label(shaped), "null", None]
    assert len({split_label(v) for v in values}) == len(values)


def test_long_values_that_share_their_kept_prefix_get_distinct_labels() -> None:
    values = [f"{'x' * 250}/{i}" for i in range(2000)] + [f"{'y' * 250}{i}" for i in range(2000)]
    labels = [split_label(v) for v in values]
    assert len(set(labels)) == len(values)
    assert all(sanitize_segment(label) == label for label in labels)


@pytest.mark.parametrize(
    ("pattern", "varies"),
    [
        (DEFAULT_FILE_NAME_PATTERN, True),
        ("{configurationName}_{executionId}_{run}.{ext}", True),
        ("{configurationName}_{executionId}.{ext}", False),  # a re-run renders it again
        ("{configurationName}_v{run}.{ext}", False),
        ("orders.{ext}", False),
    ],
)
def test_patterns_that_vary_per_run(pattern: str, varies: bool) -> None:
    assert varies_per_run(pattern) is varies


def test_a_pattern_that_does_not_vary_has_no_fallback_names() -> None:
    assert name_candidates("a.csv", "csv", "3f1a2b3c-99", 2, per_run=False) == ["a.csv"]


def test_a_manifest_is_named_after_its_whole_file_name() -> None:
    assert manifest_name("X_1.csv") == "X_1.csv.manifest.json"
    assert manifest_name("X_1.parquet") == "X_1.parquet.manifest.json"
    long = manifest_name("m" * 236 + ".csv")
    assert long.endswith(".manifest.json") and _bytes(long) <= MAX_FILE_NAME_BYTES
