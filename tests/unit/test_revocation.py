"""The revocation cache's window, and access-token keys rotating with the signing ring."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from egress.access_tokens import AccessTokens, looks_like_jwt
from egress.domain.errors import Unauthenticated
from egress.services.revocation import RevocationCache
from egress.signing import SigningRing, new_signing_key_entry, parse_signing_keys

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_an_answer_is_reused_within_the_window_and_read_again_after() -> None:
    t = [100.0]
    cache = RevocationCache(5, monotonic=lambda: t[0])
    answers = iter(["first", "second"])
    reads: list[str] = []

    def load() -> str:
        reads.append("read")
        return next(answers)

    assert cache.get("k", load) == "first"
    t[0] += 4.9
    assert cache.get("k", load) == "first" and len(reads) == 1
    t[0] += 0.2  # past the window: a revocation made meanwhile is seen now
    assert cache.get("k", load) == "second" and len(reads) == 2


def test_unknown_credentials_are_never_remembered_and_ttl_0_disables_the_cache() -> None:
    cache = RevocationCache(5)
    found: list[str | None] = [None, "made since"]
    assert cache.get("k", lambda: found.pop(0)) is None
    assert cache.get("k", lambda: found.pop(0)) == "made since"
    off = RevocationCache(0)
    values = iter([1, 2])
    assert off.get("k", lambda: next(values)) == 1
    assert off.get("k", lambda: next(values)) == 2


def _ring(*entries: str) -> SigningRing:
    return SigningRing(parse_signing_keys(",".join(entries)))


def test_access_tokens_verify_under_every_ring_key_until_it_leaves() -> None:
    old, new = new_signing_key_entry(), new_signing_key_entry()
    before = AccessTokens(_ring(old), lambda: NOW, 3600)
    token = before.issue({"sub": "c", "role": "viewer"})
    assert looks_like_jwt(token) and not looks_like_jwt("egr_x.y.z")
    rotated = AccessTokens(_ring(new, old), lambda: NOW, 3600)
    assert rotated.verify(token)["sub"] == "c"  # signed before the rotation: still good
    fresh = rotated.issue({"sub": "d"})
    assert before.verify(token)["iss"] == "egress"
    with pytest.raises(Unauthenticated, match="not valid"):
        before.verify(fresh)  # a key the old ring never had
    with pytest.raises(Unauthenticated, match="not valid"):
        AccessTokens(_ring(new), lambda: NOW, 3600).verify(token)  # the old key retired
    kids = [k["kid"] for k in rotated.jwks()["keys"]]
    assert kids == [new.split(":")[0], old.split(":")[0]]


def test_the_same_ring_gives_the_same_keys_on_every_replica() -> None:
    entry = new_signing_key_entry()
    one, two = (
        AccessTokens(_ring(entry), lambda: NOW, 60),
        AccessTokens(_ring(entry), lambda: NOW, 60),
    )
    assert one.jwks() == two.jwks()
    assert two.verify(one.issue({"sub": "x"}))["sub"] == "x"
