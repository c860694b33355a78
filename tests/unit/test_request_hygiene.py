"""Where a JSON body holds what cannot be stored: NUL characters and lone surrogates in every
string and key, numbers that are not finite, at any depth."""

from __future__ import annotations

import json

from egress.api.limits import unstorable_values

NUL = "must not contain a NUL character (\\u0000)"
SURROGATE = "must not contain a lone surrogate (\\ud800-\\udfff): it is no Unicode character"
NOT_FINITE = "must be a finite number: JSON has no NaN or Infinity (1e400 is beyond a double)"


def test_nul_bytes_are_named_in_every_string_and_key() -> None:
    body = {
        "name": "ok",
        "settings": {"host": "127.0.0.1\x00x", "po\x00rt": 5432},
        "rows": [{"id": 1}, {"id": "\x00"}],
        "fields": ["a", "b\x00"],
    }
    assert unstorable_values(body) == sorted(
        [
            (("settings", "host"), NUL),
            (("settings", "po\\u0000rt"), NUL),
            (("rows", 1, "id"), NUL),
            (("fields", 1), NUL),
        ],
        key=lambda f: str(f[0]),
    )
    assert unstorable_values({"clean": ["x", 1, None, {"y": True}, 1.5, "é😀"]}) == []


def test_lone_surrogates_and_non_finite_numbers_are_named() -> None:
    """As Python's JSON reads them: ``"\\ud800"`` escapes, and NaN, Infinity and 1e400."""
    body = json.loads(
        '{"rows": [{"id": 1e400}, {"id": NaN}, {"id": -Infinity}, {"id": "a\\ud800"}],'
        ' "additional_params": {"k\\udc00": 1, "ok": "\\ud83d\\ude00"}}'
    )
    assert unstorable_values(body) == sorted(
        [
            (("rows", 0, "id"), NOT_FINITE),
            (("rows", 1, "id"), NOT_FINITE),
            (("rows", 2, "id"), NOT_FINITE),
            (("rows", 3, "id"), SURROGATE),
            (("additional_params", "k\\udc00"), SURROGATE),
        ],
        key=lambda f: str(f[0]),
    )
    json.dumps(unstorable_values(body), allow_nan=False).encode()  # the answer itself is JSON


def test_nesting_deeper_than_the_recursion_limit_is_walked() -> None:
    deep: object = "\x00"
    for _ in range(5_000):
        deep = [deep]
    ((path, _),) = unstorable_values(deep)
    assert path == (0,) * 5_000
