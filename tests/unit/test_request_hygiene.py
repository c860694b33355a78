"""Where a JSON body holds NUL characters: every string and key, at any depth."""

from __future__ import annotations

from egress.api.limits import _nul_paths


def test_nul_paths_name_every_string_and_key() -> None:
    body = {
        "name": "ok",
        "settings": {"host": "127.0.0.1\x00x", "po\x00rt": 5432},
        "rows": [{"id": 1}, {"id": "\x00"}],
        "fields": ["a", "b\x00"],
    }
    assert _nul_paths(body) == sorted(
        [("settings", "host"), ("settings", "po\\u0000rt"), ("rows", 1, "id"), ("fields", 1)],
        key=str,
    )
    assert _nul_paths({"clean": ["x", 1, None, {"y": True}]}) == []


def test_nesting_deeper_than_the_recursion_limit_is_walked() -> None:
    deep: object = "\x00"
    for _ in range(5_000):
        deep = [deep]
    (path,) = _nul_paths(deep)
    assert path == (0,) * 5_000
