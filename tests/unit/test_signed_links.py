"""Signed links: valid until they expire (by the injected clock), useless once altered, never
another object's or another kind's link, and still valid after the signing key rotates."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from egress.domain.errors import Forbidden
from egress.domain.identity import Subject
from egress.services.links import EXPORT_FILE, RUN_FILE, LinkTarget, SignedLinks
from egress.signing import SigningRing, new_signing_key_entry, parse_signing_keys

K1, K2 = new_signing_key_entry(), new_signing_key_entry()
T0 = datetime(2026, 12, 1, 12, 0, 0, 500_000, tzinfo=UTC)
TARGET = LinkTarget(RUN_FILE, "ws1", ("cfg1", "ex1", "1", ""), Subject("token", "tok1", ""))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def links(clock: Clock, keys: str = K1, ttl_s: int = 3600) -> SignedLinks:
    return SignedLinks(SigningRing(parse_signing_keys(keys)), clock, ttl_s)


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_a_link_opens_its_target_until_it_expires() -> None:
    clock = Clock()
    signed = links(clock).issue(TARGET, "https://egress.example/")
    assert signed.url.startswith("https://egress.example/api/v1/links/run-file/")
    assert signed.expires_at == datetime(2026, 12, 1, 13, 0, 0, tzinfo=UTC)
    token = _token(signed.url)
    clock.now = signed.expires_at - timedelta(seconds=1)
    assert links(clock).open(RUN_FILE, token) == TARGET
    clock.now = signed.expires_at
    with pytest.raises(Forbidden, match="this link expired at 2026-12-01T13:00:00Z"):
        links(clock).open(RUN_FILE, token)


def _repacked(token: str, change: dict[str, object]) -> str:
    """The token with its payload edited, the signature kept: what a tamperer can make."""
    key_id, payload, mac = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(change)
    edited = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{key_id}.{edited}.{mac}"


@pytest.mark.parametrize(
    "change",
    [
        {"i": ["cfg1", "ex2", "1", ""]},  # another execution's file
        {"i": ["cfg1", "ex1", "1", "part-2"]},  # another part of the same run
        {"w": "ws2"},  # another workspace
        {"x": 4102444800},  # a later expiry
    ],
)
def test_an_altered_link_opens_nothing(change: dict[str, object]) -> None:
    clock = Clock()
    token = _token(links(clock).issue(TARGET, "http://h").url)
    with pytest.raises(Forbidden, match="not issued by this server"):
        links(clock).open(RUN_FILE, _repacked(token, change))
    for garbage in ("", "x", token[:-2], token + "A", "k.a.b"):
        with pytest.raises(Forbidden, match="not issued by this server"):
            links(clock).open(RUN_FILE, garbage)


def test_a_link_opens_only_its_own_kind_and_survives_key_rotation() -> None:
    clock = Clock()
    token = _token(links(clock, K1).issue(TARGET, "http://h").url)
    with pytest.raises(Forbidden):
        links(clock, K1).open(EXPORT_FILE, token)
    # A new signing key in front: links signed with the old one keep working while it is in
    # the ring, and stop once it is removed.
    assert links(clock, f"{K2},{K1}").open(RUN_FILE, token) == TARGET
    with pytest.raises(Forbidden):
        links(clock, K2).open(RUN_FILE, token)


def test_an_export_file_link_expires_when_its_issuer_says_at_its_own_path() -> None:
    """Seed 003's fileUrl: /export-files/<token>, expiring at completedAt + the export TTL (not
    the link TTL), the same URL whenever it is issued, and no run-file link opens there."""
    clock = Clock()
    export = LinkTarget(EXPORT_FILE, "ws1", ("req1",), Subject("user", "u1", ""))
    at = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)
    signed = links(clock).issue(export, "https://egress.example/", at)
    assert signed.url.startswith("https://egress.example/export-files/")
    assert signed.expires_at == at
    clock.now += timedelta(minutes=10)
    assert links(clock).issue(export, "https://egress.example/", at) == signed
    assert links(clock).open(EXPORT_FILE, _token(signed.url)) == export
    with pytest.raises(Forbidden, match="not issued by this server"):
        links(clock).open(RUN_FILE, _token(signed.url))
    run_file = _token(links(clock).issue(TARGET, "http://h").url)
    with pytest.raises(Forbidden, match="not issued by this server"):
        links(clock).open(EXPORT_FILE, run_file)
    clock.now = at
    with pytest.raises(Forbidden, match="expired at 2026-12-01T12:30:00Z; export again"):
        links(clock).open(EXPORT_FILE, _token(signed.url))
