"""File names and storage paths built from user input, always sanitised.

Nothing a user types becomes a path unchecked: patterns may only use known placeholders,
every rendered name is one path segment, and destination paths cannot climb out of storage.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from egress.domain.errors import Invalid

DEFAULT_FILE_NAME_PATTERN = "{configurationName}_{executionStartUtc:%Y-%m-%d_%H-%M-%S}_v{run}.{ext}"
DEFAULT_TIME_FORMAT = "%Y-%m-%d_%H-%M-%S"
PLACEHOLDERS = frozenset({"configurationName", "executionStartUtc", "run", "ext", "executionId"})
# A folder segment or split value, in UTF-8 bytes: file systems cap a segment at 255 bytes, and
# a split value is only part of a file name.
MAX_SEGMENT_BYTES = 200
# A whole file name, in UTF-8 bytes: 255 is the usual file-system limit, and a local store first
# writes a staging file ``<name>#<n>`` beside it, so leave room for that.
MAX_FILE_NAME_BYTES = 240
# Added to a stem that had to be shortened, so names that differ only in the cut-off tail stay
# distinct.
_DIGEST_CHARS = 8

MANIFEST_SUFFIX = ".manifest.json"
NULL_LABEL = "null"  # the split part of NULL values
# After a split value's sanitised form: the only thing that tells apart the values that
# sanitise alike (a long value's sanitised form is also cut), so long enough never to coincide.
_LABEL_HASH_CHARS = 16
_HASHED_LABEL = re.compile(rf"_[0-9a-f]{{{_LABEL_HASH_CHARS}}}\Z")

_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)
_FORMATS = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}


def _clean(value: str) -> str:
    """Word characters, dot, dash; no leading dots, no ``..``; may be empty."""
    return re.sub(r"\.{2,}", ".", _UNSAFE.sub("_", value).lstrip("."))


def truncate_utf8(value: str, max_bytes: int) -> str:
    """The longest prefix of ``value`` that fits ``max_bytes`` in UTF-8, never half a character."""
    return value.encode()[: max(max_bytes, 0)].decode(errors="ignore")


def sanitize_segment(value: str) -> str:
    """One safe path segment: word characters, dot, dash; no leading dots, never empty."""
    return truncate_utf8(_clean(value), MAX_SEGMENT_BYTES) or "_"


def fit_name(stem: str, suffix: str) -> str:
    """``stem + suffix`` within MAX_FILE_NAME_BYTES: only the stem is shortened (the suffix is
    the extension), and a shortened stem ends with a digest of the whole one."""
    if len((stem + suffix).encode()) <= MAX_FILE_NAME_BYTES:
        return stem + suffix
    # A suffix is an extension (at most ``.manifest.json``) unless an old stored pattern put
    # text after {ext}; keep at least half of the name for the stem.
    suffix = truncate_utf8(suffix, MAX_FILE_NAME_BYTES // 2)
    digest = hashlib.sha256(stem.encode()).hexdigest()[:_DIGEST_CHARS]
    room = MAX_FILE_NAME_BYTES - len(suffix.encode()) - len(digest) - 1
    return f"{truncate_utf8(stem, room)}_{digest}{suffix}"


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
    loc = ("body", "file_name_pattern")
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
    if not any(name == "ext" for _literal, name, _spec, _conv in parsed):
        raise Invalid.at(loc, "must contain {ext} so the file keeps its format's extension")
    head, _dot, _tail = _split_pattern(pattern)
    if not any(
        name not in (None, "ext") or _clean(literal).strip("_-") for literal, name, _ in head
    ):
        raise Invalid.at(
            loc,
            "needs a name before the extension: a placeholder such as {configurationName} or "
            "some text (a pattern that is only {ext}, or only an extension, names no file)",
        )


# A parsed pattern: (literal text, placeholder or None, time format) per piece.
_Pieces = list[tuple[str, str | None, str]]


def _split_pattern(pattern: str) -> tuple[_Pieces, bool, _Pieces]:
    """(stem, whether a dot precedes the extension, suffix) of a pattern: the suffix starts at
    its last ``{ext}``."""
    pieces = [(lit, name, spec or "") for lit, name, spec, _ in string.Formatter().parse(pattern)]
    last = max((i for i, piece in enumerate(pieces) if piece[1] == "ext"), default=None)
    if last is None:
        return pieces, False, []
    literal = pieces[last][0]
    head = [*pieces[:last], (literal.removesuffix("."), None, "")]
    return head, literal.endswith("."), [("", "ext", ""), *pieces[last + 1 :]]


def render_file_name(pattern: str, parts: NameParts) -> str:
    """The file name: one safe segment of at most MAX_FILE_NAME_BYTES that keeps its extension
    (``.{ext}``); a long stem is shortened, never the extension."""
    head, dot, tail = _split_pattern(pattern)
    stem = _clean(_render(head, parts)).rstrip(".") or "_"
    suffix = _clean(_render(tail, parts))
    return fit_name(stem, f".{suffix}" if dot else suffix)


def _render(pieces: _Pieces, parts: NameParts) -> str:
    out: list[str] = []
    for literal, name, spec in pieces:
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
    return "".join(out)


def varies_per_run(pattern: str) -> bool:
    """Whether two runs render different names: the run's start time, or the execution and the
    run number together. Without it every run (or every re-run) renders the same name."""
    names = {name for _lit, name, _spec, _conv in string.Formatter().parse(pattern) if name}
    return "executionStartUtc" in names or {"executionId", "run"} <= names


def name_candidates(
    name: str, ext: str, execution_id: str, attempt: int, *, per_run: bool = True
) -> list[str]:
    """The rendered name, then — for a pattern that varies per run (``per_run``) — variants
    for when two runs still render the same name (two executions started within the same
    second); each fits MAX_FILE_NAME_BYTES. A pattern that gives every run the same name gets
    no variants: the later run fails rather than publish under a name nobody chose."""
    suffix = f".{ext}" if name.endswith(f".{ext}") else ""
    stem = name.removesuffix(suffix)
    if not per_run:
        return [fit_name(stem, suffix)]
    short = sanitize_segment(execution_id.replace("-", "")[:8])
    return [
        fit_name(stem, suffix),
        fit_name(f"{stem}_{short}", suffix),
        fit_name(f"{stem}_{short}_a{attempt}", suffix),
    ]


def manifest_name(file_name: str) -> str:
    """A run's manifest sits beside its file: the data file's whole name plus
    ``.manifest.json`` (``X_1.csv.manifest.json``); a split run uses the name its unsplit
    file would have had. Deleting a file deletes the key this gives."""
    return fit_name(file_name, MANIFEST_SUFFIX)


def split_label(value: str | None) -> str:
    """What a split part's name shows of its value: the value itself when it is already a safe
    name segment, else its sanitised form plus 16 hex digits of a hash of the value — so a value
    gets the same name on every run, and values that sanitise alike (``a/b``, ``a b``, ``a?b``
    beside ``a_b``) never compete for one name. NULL is ``null``; the text ``null`` is hashed,
    and so is a safe value shaped like a hashed label (``x_<16 hex>``), which could otherwise
    be another value's label."""
    if value is None:
        return NULL_LABEL
    clean = sanitize_segment(value)
    if clean == value and value != NULL_LABEL and not _HASHED_LABEL.search(value):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:_LABEL_HASH_CHARS]
    # Cut so that the label with its hash is a segment of MAX_SEGMENT_BYTES too.
    return f"{truncate_utf8(clean, MAX_SEGMENT_BYTES - 1 - len(digest))}_{digest}"


def storage_key(workspace_id: str, destination_path: str, file_name: str) -> str:
    """Every workspace has its own namespace: keys start with its id, so two workspaces that
    pick the same destination path never meet."""
    return "/".join(p for p in (workspace_id, destination_path, file_name) if p)


def content_disposition(file_name: str) -> str:
    """RFC 6266: an ASCII fallback plus the exact UTF-8 name."""
    fallback = file_name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name)}"
