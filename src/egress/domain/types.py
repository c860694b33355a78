"""The logical column types Egress speaks, independent of any source or file format.

Sources map their native types onto these; sinks and Arrow schemas are derived from them.
"""

from __future__ import annotations

import re

SIMPLE_TYPES = frozenset(
    {
        "boolean",
        "int16",
        "int32",
        "int64",
        "float32",
        "float64",
        "decimal",  # unbounded precision: carried as text so no digit is ever lost
        "string",
        "date",
        "time",
        "timestamp",
        "timestamptz",
        "duration",  # a signed span of time (MySQL TIME), microseconds
        "binary",
        "json",
        "uuid",
    }
)
MAX_DECIMAL_PRECISION = 38
_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")
_LIST = re.compile(r"^list<(.+)>$")


def decimal_type(precision: int, scale: int) -> str:
    """``decimal(p,s)`` when Arrow can hold it exactly, else the unbounded text-carried type."""
    if 0 < precision <= MAX_DECIMAL_PRECISION and 0 <= scale <= precision:
        return f"decimal({precision},{scale})"
    return "decimal"


def parse_decimal(logical: str) -> tuple[int, int] | None:
    match = _DECIMAL.match(logical)
    return (int(match.group(1)), int(match.group(2))) if match else None


def list_type(element: str) -> str:
    """A one-dimensional array of ``element`` values (``list<int32>``)."""
    return f"list<{element}>"


def parse_list(logical: str) -> str | None:
    """The element type of a ``list<T>``, else None."""
    match = _LIST.match(logical)
    return match.group(1) if match else None


def is_valid(logical: str) -> bool:
    element = parse_list(logical)
    if element is not None:
        return parse_list(element) is None and is_valid(element)
    return logical in SIMPLE_TYPES or parse_decimal(logical) is not None
