"""Where a tenant's local paths may point (DESIGN §7): inside a files root, never at Egress's
own files.

Two steps, in this order. The *spelling* of a path or ``file:`` URL is checked without touching
the disk (``..`` segments, percent-encoded dots, a host, ``//`` paths, NUL are refused), so no
later normalisation can turn an accepted name into another one. Then the *real* path (symlinks
followed) must lie inside a root and outside the data dir's own files. Sources open the real
path they checked, and check again each time they are opened: a symlink swapped in after a
connection was saved must not escape.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from egress.sources.policy import SOURCES_FOLDER, SourcePolicy

# SQLite keeps a database's pages in these siblings too; they are as private as the database.
SQLITE_SIBLINGS = ("-wal", "-shm", "-journal")
FILE_URL_PREFIX = "file:///"


class PathRefused(ValueError):
    """A path or URL is spelled in a way that could hide where it points, or points outside
    the files roots / at Egress's own files. The message never says whether anything exists."""


def checked_spelling(path: str) -> str:
    """``path`` if it is absolute and names its target plainly; raises PathRefused."""
    if "\x00" in path:
        raise PathRefused("must not contain NUL characters")
    if not path.startswith("/") or path.startswith("//"):
        raise PathRefused("must be an absolute path starting with a single '/'")
    if ".." in path.split("/"):
        raise PathRefused("must not contain '..' segments")
    return path


def file_url_path(url: str) -> str:
    """The local path a ``file:`` URL names: only ``file:///absolute/path`` is accepted, since
    ``file://host/…``, ``file:/x`` and ``file:////x`` are read differently by different
    parsers; percent-escapes are decoded before the spelling check (``%2e%2e`` is ``..``)."""
    if not url.startswith(FILE_URL_PREFIX) or url.startswith(FILE_URL_PREFIX + "/"):
        raise PathRefused("a file: URL needs an absolute path and no host, e.g. file:///data/in")
    parts = urlsplit(url)
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise PathRefused("a file: URL takes no query or fragment")
    return checked_spelling(unquote(parts.path))


def is_inside(path: Path, folder: Path) -> bool:
    """For absolute, normalised paths; compared as text: pathlib's ``is_relative_to`` was a
    quarter of a millisecond a call, and every file a run opens is checked."""
    inner, outer = str(path), str(folder)
    return inner == outer or inner.startswith(outer if outer.endswith("/") else outer + "/")


def is_own(real: Path, policy: SourcePolicy) -> bool:
    """Whether a real path is one of Egress's own files: anything in the data dir but its
    ``sources`` folder, and the metadata database, warehouse and storage folder wherever they
    are (with SQLite's sibling files)."""
    data_dir = policy.data_dir
    if is_inside(real, data_dir) and not is_inside(real, data_dir / SOURCES_FOLDER):
        return True
    text = str(real)
    for own in policy.own_paths:
        if is_inside(real, own) or any(text == f"{own}{s}" for s in SQLITE_SIBLINGS):
            return True
    return False


def is_allowed(real: Path, policy: SourcePolicy) -> bool:
    """Whether a real (symlink-free, absolute) path may be read by a tenant connection."""
    return any(is_inside(real, root) for root in policy.files_roots) and not is_own(real, policy)


def is_passable(real: Path, policy: SourcePolicy) -> bool:
    """Whether a listing may enter a folder: any allowed one, and the data dir itself (inside a
    root), which holds the open ``sources`` folder among Egress's own files; each of its
    entries is checked in turn."""
    inside_a_root = any(is_inside(real, root) for root in policy.files_roots)
    return is_allowed(real, policy) or (real == policy.data_dir and inside_a_root)


def refusal(policy: SourcePolicy) -> str:
    roots = ", ".join(str(r) for r in policy.files_roots)
    return f"must be inside a files root ({roots}; EGRESS_FILES_ROOTS) and not Egress's own files"


def confined(path: str, policy: SourcePolicy) -> Path:
    """The real path of an already spelling-checked absolute ``path``, if a tenant may read it;
    raises PathRefused (the same message whether or not anything exists there)."""
    real = Path(os.path.realpath(path))
    if not is_allowed(real, policy):
        raise PathRefused(refusal(policy))
    return real
