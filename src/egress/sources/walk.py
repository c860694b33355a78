"""A bounded walk over a folder tree, local or in a bucket (issue 10: browsing ``file:///usr``).

The walk streams: it lists one folder at a time and stops at the first entry beyond
``EGRESS_CATALOG_MAX_ENTRIES`` or the first folder deeper than ``EGRESS_CATALOG_MAX_DEPTH``, so
memory stays bounded by the limits, not by the tree. A folder reached twice (a symlink loop, or
a symlink to a folder already listed) is listed once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from egress.sources.base import SourceError, clean
from egress.sources.policy import SourcePolicy


@dataclass(frozen=True)
class Entry:
    name: str
    location: str  # where to list or read it: a real local path, or bucket/key
    is_dir: bool
    version: tuple[int | None, int | None]  # size, mtime_ns
    identity: tuple[int, int] | None  # (device, inode) of a local entry, to notice loops


# A folder's entries, or None for each one seen but left out (it still counts to the limit).
Lister = Callable[[str], Iterable[Entry | None]]


def too_many(limit: int) -> str:
    return (
        f"the folder has more than {limit} entries; set EGRESS_CATALOG_MAX_ENTRIES or point "
        "the connection at a smaller folder"
    )


def too_deep(limit: int) -> str:
    return (
        f"the folder nests folders more than {limit} levels deep; set EGRESS_CATALOG_MAX_DEPTH "
        "or point the connection at a smaller folder"
    )


def walk(
    lister: Lister,
    start: str,
    policy: SourcePolicy,
    recursive: bool = True,
    identity: tuple[int, int] | None = None,
) -> Iterator[tuple[str, Entry]]:
    """(path relative to ``start``, entry) for every entry below ``start`` (only its direct
    entries unless ``recursive``), each folder's entries in name order. Raises SourceError
    when the tree is beyond the catalog limits or a folder cannot be listed. ``identity`` is
    the start folder's own, so a symlink back to it is seen as a loop."""
    max_entries, max_depth = policy.catalog_max_entries, policy.catalog_max_depth
    seen: set[tuple[int, int]] = {identity} if identity is not None else set()
    count = 0
    stack: list[tuple[str, str, int]] = [(start, "", 0)]
    while stack:
        folder, prefix, depth = stack.pop()
        entries: list[Entry] = []
        try:
            for entry in lister(folder):
                count += 1
                if count > max_entries:
                    raise SourceError(too_many(max_entries))
                if entry is not None:
                    entries.append(entry)
        except (OSError, pa.ArrowException) as exc:
            raise SourceError(f"cannot list {prefix or start}: {clean(exc)}") from exc
        entries.sort(key=lambda e: e.name)
        folders = []
        for entry in entries:
            relative = f"{prefix}/{entry.name}" if prefix else entry.name
            if entry.is_dir:
                if entry.identity is not None:
                    if entry.identity in seen:
                        continue
                    seen.add(entry.identity)
                if recursive:
                    if depth + 1 > max_depth:
                        raise SourceError(too_deep(max_depth))
                    folders.append((entry.location, relative, depth + 1))
            yield relative, entry
        stack.extend(reversed(folders))
