"""Encryption at rest for connection secrets: a ring of Fernet keys (AES-128-CBC + HMAC-SHA256).

The first key of the ring seals, every key opens (MultiFernet), so a new key can be put first
while secrets sealed under the old one stay readable.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from egress.settings import Settings


class SecretBox:
    def __init__(self, keys: list[bytes]) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self._first = Fernet(keys[0])

    def is_current(self, token: str) -> bool:
        """Sealed under the ring's first key already (nothing to rotate)."""
        try:
            self._first.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def reseal(self, token: str) -> str:
        """The same secrets sealed under the first key (any key of the ring opens ``token``);
        ``InvalidToken`` when none does."""
        return self._fernet.rotate(token.encode()).decode()

    def seal(self, secrets: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(secrets).encode()).decode()

    def can_open(self, token: str) -> bool:
        try:
            self._fernet.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def open(self, token: str | None) -> dict[str, str]:
        if not token:
            return {}
        try:
            data: dict[str, str] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise RuntimeError(
                "connection secrets cannot be decrypted: none of the keys in "
                "EGRESS_SECRET_KEYS (or EGRESS_SECRET_KEY) is the key they were sealed with"
            ) from exc
        return data


def read_or_create_key_file(path: Path, content: bytes) -> bytes:
    """The key stored at ``path``, first writing ``content`` there (mode 0600) if none is.

    The file appears complete or not at all (written aside, then hard-linked into place), so
    processes starting together on one data dir all end up with the same key.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
            os.link(aside, path)
        except FileExistsError:
            pass  # another process won the race: its key is the one
        finally:
            aside.unlink()
    return path.read_bytes().strip()


def _fernet_keys(text: str) -> list[bytes]:
    keys = [k.strip().encode() for k in text.split(",")]
    for n, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ValueError(
                f"EGRESS_SECRET_KEYS entry {n} is not a Fernet key "
                "(32 bytes, URL-safe base64: Fernet.generate_key())"
            ) from None
    return keys


def secret_ring_source(settings: Settings) -> str:
    """Where this process's secret ring comes from, for messages."""
    if settings.secret_keys:
        return "EGRESS_SECRET_KEYS"
    if settings.secret_key:
        return "EGRESS_SECRET_KEY (EGRESS_SECRET_KEYS is unset)"
    return f"{settings.secret_key_path} (EGRESS_SECRET_KEYS and EGRESS_SECRET_KEY are unset)"


def load_secret_box(settings: Settings) -> SecretBox:
    """EGRESS_SECRET_KEYS; else EGRESS_SECRET_KEY, else a key generated once into the data dir
    (mode 0600), as a ring of one."""
    if settings.secret_keys:
        return SecretBox(_fernet_keys(settings.secret_keys))
    if settings.secret_key:
        return SecretBox([settings.secret_key.encode()])
    return SecretBox([read_or_create_key_file(settings.secret_key_path, Fernet.generate_key())])
