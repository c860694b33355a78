"""HMAC-SHA256 under a ring of identified keys (``EGRESS_SIGNING_KEYS``).

The first key signs, every key verifies, so keys rotate without invalidating what the older
ones signed. Token hashes and signed cursors (later: download URLs and export cursors) use it;
connection secrets have their own ring (``crypto.SecretBox``), so rotating one never touches
the other. Each use names a *purpose* that is mixed into the MAC: a value signed for one
purpose never verifies for another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from egress.crypto import read_or_create_key_file
from egress.settings import Settings

log = logging.getLogger(__name__)
KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
# HMAC-SHA256 gains nothing from keys longer than its block, and is weak with short ones.
MIN_KEY_BYTES = 32


class BadSignature(Exception):
    """The value was not signed by any key of the ring for this purpose."""


@dataclass(frozen=True)
class SigningKey:
    id: str
    secret: bytes = field(repr=False)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not."""
    bare = text.rstrip("=")
    return base64.b64decode(bare + "=" * (-len(bare) % 4), altchars=b"-_", validate=True)


def parse_signing_keys(text: str) -> list[SigningKey]:
    """``"k2:<base64>,k1:<base64>"`` → keys, first one signing. Errors never echo a secret."""
    keys: list[SigningKey] = []
    for n, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        key_id, sep, encoded = entry.partition(":")
        if not sep or not KEY_ID.fullmatch(key_id):
            raise ValueError(
                f"EGRESS_SIGNING_KEYS entry {n} must be <id>:<base64 key>, the id made of "
                "letters, digits, '-' or '_' (at most 32)"
            )
        try:
            secret = _unb64(encoded.strip())
        except (binascii.Error, ValueError):
            secret = b""
        if len(secret) < MIN_KEY_BYTES:
            raise ValueError(
                f"EGRESS_SIGNING_KEYS key {key_id!r} must be base64 of at least "
                f"{MIN_KEY_BYTES} random bytes"
            )
        if any(k.id == key_id for k in keys):
            raise ValueError(f"EGRESS_SIGNING_KEYS names key {key_id!r} twice")
        keys.append(SigningKey(key_id, secret))
    return keys


def new_signing_key_entry() -> str:
    """One ring entry in the ``EGRESS_SIGNING_KEYS`` format, with a fresh id and secret."""
    return f"k{secrets.token_hex(4)}:{_b64(secrets.token_bytes(MIN_KEY_BYTES))}"


class SigningRing:
    def __init__(self, keys: Sequence[SigningKey]) -> None:
        if not keys:
            raise ValueError("a signing ring needs at least one key")
        self.keys = tuple(keys)
        self._by_id = {k.id: k for k in self.keys}

    @property
    def current(self) -> SigningKey:
        return self.keys[0]

    def key(self, key_id: str) -> SigningKey | None:
        return self._by_id.get(key_id)

    def mac(self, key: SigningKey, purpose: str, data: bytes) -> bytes:
        return hmac.new(key.secret, purpose.encode() + b"\0" + data, hashlib.sha256).digest()

    def signer(self, purpose: str) -> Signer:
        return Signer(self, purpose)


@dataclass(frozen=True)
class Signer:
    """``sign(bytes) → str`` and back, for one purpose; the text is URL-safe."""

    ring: SigningRing
    purpose: str

    def sign(self, data: bytes) -> str:
        key = self.ring.current
        return f"{key.id}.{_b64(data)}.{_b64(self.ring.mac(key, self.purpose, data))}"

    def verify(self, signed: str) -> bytes:
        parts = signed.split(".")
        key = self.ring.key(parts[0]) if len(parts) == 3 else None
        if key is None:
            raise BadSignature("not signed by a key of this server")
        payload, mac = parts[1], parts[2]
        try:
            data, given = _unb64(payload), _unb64(mac)
        except (binascii.Error, ValueError) as exc:
            raise BadSignature("not signed by a key of this server") from exc
        # base64 leaves spare bits in the last character: only the one spelling sign() wrote
        # is this token, so an edit of its last character never passes as the original.
        canonical = _b64(data) == payload and _b64(given) == mac
        if not canonical or not hmac.compare_digest(given, self.ring.mac(key, self.purpose, data)):
            raise BadSignature("not signed by a key of this server")
        return data


def load_signing_ring(settings: Settings) -> SigningRing:
    """EGRESS_SIGNING_KEYS, else one key generated once into the data dir (mode 0600)."""
    if settings.signing_keys:
        return SigningRing(parse_signing_keys(settings.signing_keys))
    if settings.database_url:
        log.warning(
            "EGRESS_SIGNING_KEYS is unset: using %s. Every process sharing this metadata "
            "database needs the same keys, or tokens made by one fail on another.",
            settings.signing_key_path,
        )
    text = read_or_create_key_file(settings.signing_key_path, new_signing_key_entry().encode())
    return SigningRing(parse_signing_keys(text.decode()))
