"""File names and storage paths built from user input, always sanitised.

Nothing a user types becomes a path unchecked: patterns may only use known placeholders,
every rendered name is one path segment, and destination paths cannot climb out of storage.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import datetime

from egress.domain.errors import Invalid

DEFAULT_FILE_NAME_PATTERN = "{configurationName}_{executionStartUtc:%Y-%m-%d_%H-%M-%S}_v{run}.{ext}"
DEFAULT_TIME_FORMAT = "%Y-%m-%d_%H-%M-%S"
PLACEHOLDERS = frozenset({"configurationName", "executionStartUtc", "run", "ext", "executionId"})
# Most filesystems and object stores cap a segment at 255 bytes; leave room for suffixes.
MAX_SEGMENT_LEN = 200

_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)
_FORMATS = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}


def sanitize_segment(value: str) -> str:
    """One safe path segment: word characters, dot, dash; no leading dots, never empty."""
    cleaned = _UNSAFE.sub("_", value).lstrip(".")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)[:MAX_SEGMENT_LEN]
    return cleaned or "_"


def file_extension(fmt: str, compression: str) -> str:
    ext = _FORMATS[fmt]
    return f"{ext}.gz" if compression == "gzip" else ext


def normalize_destination_path(path: str) -> str:
    """``"exports//orders/"`` → ``"exports/orders"``; ``..`` is refused, segments sanitised."""
    segments = [s for s in path.replace("\\", "/").split("/") if s not in ("", ".")]
    if any(s == ".." for s in segments):
        raise Invalid.at(("body", "destination", "path"), "must not contain '..'")
    return "/".join(sanitize_segment(s) for s in segments)


@dataclass(frozen=True)
class NameParts:
    configuration_name: str
    started_at: datetime
    run: int
    ext: str
    execution_id: str


def validate_pattern(pattern: str) -> None:
    """Refuse unknown placeholders, attribute access and bad time formats at save time."""
    loc = ("body", "fileNamePattern")
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise Invalid.at(loc, f"malformed pattern: {exc}") from exc
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            known = ", ".join(sorted(PLACEHOLDERS))
            raise Invalid.at(loc, f"unknown placeholder {{{name}}}; known: {known}")
        if conversion:
            raise Invalid.at(loc, f"conversions such as !{conversion} are not allowed")
        if spec and name != "executionStartUtc":
            raise Invalid.at(loc, f"only {{executionStartUtc}} takes a format, not {{{name}}}")
    if "{ext}" not in pattern:
        raise Invalid.at(loc, "must contain {ext} so the file keeps its format's extension")


def render_file_name(pattern: str, parts: NameParts) -> str:
    out: list[str] = []
    for literal, name, spec, _conv in string.Formatter().parse(pattern):
        out.append(literal)
        if name == "configurationName":
            out.append(parts.configuration_name)
        elif name == "executionStartUtc":
            out.append(parts.started_at.strftime(spec or DEFAULT_TIME_FORMAT))
        elif name == "run":
            out.append(str(parts.run))
        elif name == "ext":
            out.append(parts.ext)
        elif name == "executionId":
            out.append(parts.execution_id)
    return sanitize_segment("".join(out))


def name_candidates(name: str, ext: str, execution_id: str, attempt: int) -> list[str]:
    """The rendered name, then variants that stay unique when two runs render the same name
    (e.g. two executions started within the same second)."""
    stem = name.removesuffix(f".{ext}")
    short = sanitize_segment(execution_id.replace("-", "")[:8])
    return [
        name,
        f"{stem}_{short}.{ext}",
        f"{stem}_{short}_a{attempt}.{ext}",
    ]


def storage_key(destination_path: str, file_name: str) -> str:
    return f"{destination_path}/{file_name}" if destination_path else file_name
