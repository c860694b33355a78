"""Page arithmetic shared by every list endpoint, and the cursor of keyset-paged lists."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from egress.domain.catalog import ColumnInfo
from egress.domain.types import parse_decimal

DEFAULT_LIMIT = 50
# Large enough for scripts to page quickly, small enough that one page is cheap to serve.
MAX_LIMIT = 1000
# Keeps page * limit inside a 64-bit OFFSET (a bigger page number is a 422, not an overflow).
MAX_PAGE = 10_000_000


@dataclass(frozen=True)
class PageRequest:
    page: int = 0
    limit: int = DEFAULT_LIMIT

    @property
    def offset(self) -> int:
        return self.page * self.limit


def total_pages(total: int, limit: int) -> int:
    return (total + limit - 1) // limit if limit else 0


@dataclass(frozen=True)
class KeysetCursor:
    """Where a keyset page ended: what it pages (``scope``, e.g. a table id) and the last
    row's key values. Its JSON is signed by whoever hands it out; a face never parses it."""

    scope: str
    after: list[Any]

    def to_json(self) -> bytes:
        after = [key_json(v) for v in self.after]
        return json.dumps({"table": self.scope, "after": after}).encode()

    @classmethod
    def from_json(cls, raw: bytes, scope: str, width: int) -> KeysetCursor | None:
        """The cursor, or None unless it pages ``scope`` by ``width`` key values."""
        try:
            payload = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(payload, dict) or payload.get("table") != scope:
            return None
        after = payload.get("after")
        if not isinstance(after, list) or len(after) != width:
            return None
        return cls(scope, after)


# Integers beyond this lose digits in a JSON reader that keeps numbers as doubles.
_SAFE_INT = 2**53


def key_json(value: Any) -> Any:
    """A key value as a cursor's JSON keeps it, exactly: bytes as hex, dates and times as
    ISO text, decimals and integers beyond 2^53 as text, durations in microseconds.
    ``key_value`` reads it back by the key column's logical type (``str(bytes)`` or
    ``str(datetime)`` would come back as text, which a source compares as text)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, date | time):  # datetime too
        return value.isoformat()
    if isinstance(value, timedelta):
        return value // timedelta(microseconds=1)
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _SAFE_INT:
        return str(value)
    return value


class BadKey(ValueError):
    """A cursor's key value that does not read as its column's type."""


def key_value(value: Any, logical: str) -> Any:
    """``key_json``'s value back as the Python value of a ``logical`` column, which every
    source binds as that type. Text that an older release wrote with ``str()`` reads the
    same where that text was exact (dates, decimals); ``str(bytes)`` does not: BadKey."""
    try:
        if logical == "binary":
            return bytes.fromhex(value)
        if logical in ("timestamp", "timestamptz"):
            return datetime.fromisoformat(value)
        if logical == "date":
            return date.fromisoformat(value)
        if logical == "time":
            return time.fromisoformat(value)
        if logical == "duration":
            return timedelta(microseconds=_integer(value))
        if logical in ("int16", "int32", "int64"):
            return _integer(value)
        if logical == "decimal" or parse_decimal(logical) is not None:
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise BadKey(f"{value!r} is not a decimal")
            return Decimal(value)
    except (TypeError, ValueError, InvalidOperation) as exc:
        raise BadKey(f"{value!r} is not a {logical} key value") from exc
    return value


def key_types(fields: list[ColumnInfo], key: list[str]) -> list[str]:
    """The logical types of the ``key`` columns among ``fields``, in key order."""
    types = {f.name: f.type for f in fields}
    return [types[k] for k in key]


def key_values(values: list[Any], types: list[str]) -> list[Any]:
    return [key_value(v, t) for v, t in zip(values, types, strict=True)]


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadKey(f"{value!r} is not an integer")
    return int(value)
