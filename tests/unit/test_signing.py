"""The signing ring: what verifies, what does not, and how keys rotate."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable

import pytest

from egress.signing import (
    BadSignature,
    SigningRing,
    new_signing_key_entry,
    parse_signing_keys,
)

K1, K2 = new_signing_key_entry(), new_signing_key_entry()


def ring(text: str) -> SigningRing:
    return SigningRing(parse_signing_keys(text))


def test_sign_and_verify_round_trip() -> None:
    signer = ring(K1).signer("test")
    signed = signer.sign(b'["a", 1]')
    assert signer.verify(signed) == b'["a", 1]'
    assert signed.split(".")[0] == K1.split(":")[0]


def test_the_first_key_signs_and_every_key_verifies() -> None:
    old = ring(K1).signer("test").sign(b"x")
    rotated = ring(f"{K2},{K1}").signer("test")
    assert rotated.verify(old) == b"x"
    assert rotated.sign(b"x").split(".")[0] == K2.split(":")[0]
    with pytest.raises(BadSignature):  # k1 retired
        ring(K2).signer("test").verify(old)


def test_a_signature_is_bound_to_its_purpose() -> None:
    r = ring(K1)
    with pytest.raises(BadSignature):
        r.signer("download-url").verify(r.signer("cursor").sign(b"x"))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: s + "A",
        lambda s: s.replace(".", "..", 1),
        lambda s: "other" + s,
        lambda s: s.rsplit(".", 1)[0],
        lambda s: s.split(".")[0] + ".eyJhIjoxfQ." + s.split(".")[2],
        lambda s: "",
        lambda s: "!!.!!.!!",
    ],
)
def test_tampered_values_do_not_verify(tamper: Callable[[str], str]) -> None:
    signer = ring(K1).signer("test")
    with pytest.raises(BadSignature):
        signer.verify(tamper(signer.sign(b"payload")))


def test_only_the_spelling_it_signed_verifies() -> None:
    """A 32-byte MAC leaves two spare bits in its last base64 character: setting them decodes
    to the same bytes, and must still be refused (a tampered token that passes by chance)."""
    signer = ring(K1).signer("test")
    signed = signer.sign(b"payload")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signed[-1])
    assert last & 0b11 == 0  # sign() writes the canonical form
    respelled = signed[:-1] + alphabet[last | 0b01]
    assert base64.urlsafe_b64decode(respelled.split(".")[2] + "=") == base64.urlsafe_b64decode(
        signed.split(".")[2] + "="
    )
    with pytest.raises(BadSignature):
        signer.verify(respelled)


def test_another_ring_does_not_verify() -> None:
    with pytest.raises(BadSignature):
        ring(K2.replace(K2.split(":")[0], K1.split(":")[0])).signer("t").verify(
            ring(K1).signer("t").sign(b"x")
        )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nokey", "entry 1 must be <id>:<base64 key>"),
        (f"{K1},bad id:{K1.split(':')[1]}", "entry 2 must be <id>:<base64 key>"),
        ("k1:c2hvcnQ=", "'k1' must be base64 of at least 32 random bytes"),
        ("k1:not base64!", "'k1' must be base64 of at least 32 random bytes"),
        (f"{K1},{K1}", "names key"),
        ("", "entry 1"),
    ],
)
def test_bad_rings_are_refused_without_echoing_the_secret(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        parse_signing_keys(text)
    assert K1.split(":")[1] not in str(err.value)


def test_standard_base64_keys_are_accepted() -> None:
    key = base64.b64encode(secrets.token_bytes(48)).decode()
    assert parse_signing_keys(f"ops-2026:{key}")[0].secret == base64.b64decode(key)
