"""What a signed link says: which object of which workspace it opens, and until when. Pure;
``services/signed_links.py`` signs and verifies it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Link:
    workspace_id: str
    target: str  # what the link opens, e.g. an export request's id
    expires_at: datetime

    def to_json(self) -> bytes:
        body = {"w": self.workspace_id, "t": self.target, "e": int(self.expires_at.timestamp())}
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Link | None:
        try:
            body = json.loads(raw)
            return cls(str(body["w"]), str(body["t"]), datetime.fromtimestamp(body["e"], UTC))
        except (ValueError, KeyError, TypeError, OverflowError, OSError):
            return None

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at
