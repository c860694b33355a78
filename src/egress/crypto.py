"""Encryption at rest for connection secrets (Fernet: AES-128-CBC + HMAC-SHA256)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from egress.settings import Settings


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, secrets: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(secrets).encode()).decode()

    def open(self, token: str | None) -> dict[str, str]:
        if not token:
            return {}
        try:
            data: dict[str, str] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise RuntimeError(
                "connection secrets cannot be decrypted: EGRESS_SECRET_KEY differs from the key "
                "they were stored with"
            ) from exc
        return data


def load_secret_box(settings: Settings) -> SecretBox:
    """Key from EGRESS_SECRET_KEY, else a key generated once into the data dir (mode 0600)."""
    if settings.secret_key:
        return SecretBox(settings.secret_key.encode())
    path: Path = settings.secret_key_path
    if not path.exists():
        settings.ensure_data_dir()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(Fernet.generate_key())
    return SecretBox(path.read_bytes().strip())
