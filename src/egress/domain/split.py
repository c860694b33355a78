"""Sub-extracts: one per distinct value of the split-by field, with a stable URL-safe id."""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, time
from decimal import Decimal

from egress.domain.types import parse_list

ALL = "all"  # the whole extract, when it is not split
NULL_ID = "null"
_SLUG = re.compile(r"[^A-Za-z0-9]+")
MAX_SLUG = 40
# The hash after a slug that is the value itself: such an id gives its value back, so the
# hash only keeps the ids clients already hold.
_SHORT_HASH = 6
# The hash after a slug that lost part of the value (cut, or characters replaced): only the
# hash tells apart values that share the slug, so it is long enough never to coincide. Its
# length also sets these ids apart from the short form's.
_LONG_HASH = 16


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


def split_field_problem(logical: str) -> str | None:
    """Why a column of type ``logical`` cannot split a run's rows, or None: a part holds the
    rows of one value, and a list is many."""
    if parse_list(logical) is not None:
        return f"a {logical} column holds lists of values; split by a column of single values"
    return None


def sub_extract_id(canonical: str | None) -> str:
    """``EU`` → ``EU-9170a8``, ``a b`` → ``a-b-c8687a08aa5d6ed2``: readable, URL-safe, stable, and
    distinct for distinct values. The part after the last ``-`` is the hash (hex holds no
    ``-``): 6 digits after a slug that is the whole value, 16 after one that is not."""
    if canonical is None:
        return NULL_ID
    slug = _SLUG.sub("-", canonical).strip("-")[:MAX_SLUG] or "v"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    if slug == canonical:
        return f"{slug}-{digest[:_SHORT_HASH]}"
    return f"{slug}-{digest[:_LONG_HASH]}"
