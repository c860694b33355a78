"""Sub-extracts: one per distinct value of the split-by field, with a stable URL-safe id."""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, time
from decimal import Decimal

ALL = "all"  # the whole extract, when it is not split
NULL_ID = "null"
_SLUG = re.compile(r"[^A-Za-z0-9]+")
MAX_SLUG = 40


def canonical_value(value: object) -> str | None:
    """The text a value is known by in ids, names and the API; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def sub_extract_id(canonical: str | None) -> str:
    """``EU`` → ``EU-7c5d01``: readable, URL-safe, and distinct for distinct values."""
    if canonical is None:
        return NULL_ID
    slug = _SLUG.sub("-", canonical).strip("-")[:MAX_SLUG] or "v"
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:6]
    return f"{slug}-{digest}"
