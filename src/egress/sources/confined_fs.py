"""The local filesystem a files connection reads through: every file is checked when it is
opened, on the descriptor that is then read (DESIGN §7).

A folder's files are listed and checked, then Arrow opens each one by name, lazily, seconds
later: a data file swapped for a symlink to another workspace's output in between was read
(the listing's check had passed). Here the name is opened first, then the file behind the
descriptor must be a regular file whose real path is allowed, and Arrow reads that very
descriptor's file (``/proc/self/fd/N``, which reopens the open file, not the name). A FIFO or
device is never read (opening one would block or stream forever).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from egress.sources import confine
from egress.sources.policy import SourcePolicy


class _ConfinedHandler(pafs.FileSystemHandler):  # type: ignore[misc]
    """Listing and metadata as the local filesystem answers them (each entry is checked by
    the source's walk); opening checked here; nothing written."""

    def __init__(self, policy: SourcePolicy) -> None:
        self._policy = policy
        self._local = pafs.LocalFileSystem()

    def _open(self, path: str) -> pa.NativeFile:
        # O_NONBLOCK: opening a FIFO for reading would wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            opened = f"/proc/self/fd/{fd}"
            real = Path(os.readlink(opened))
            if not stat.S_ISREG(os.fstat(fd).st_mode) or not confine.is_allowed(real, self._policy):
                raise PermissionError(f"{path}: {confine.refusal(self._policy)}")
            return pa.OSFile(opened)
        finally:
            os.close(fd)

    def open_input_file(self, path: str) -> pa.NativeFile:
        return self._open(path)

    def open_input_stream(self, path: str) -> pa.NativeFile:
        return self._open(path)

    def get_type_name(self) -> str:
        return "egress-confined-local"

    def equals(self, other: Any) -> bool:
        return isinstance(other, _ConfinedHandler) and other._policy == self._policy

    def normalize_path(self, path: str) -> str:
        return str(self._local.normalize_path(path))

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return list(self._local.get_file_info(paths))

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return list(self._local.get_file_info(selector))

    def _read_only(self, *_: Any) -> Any:
        raise PermissionError("a files connection only reads")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _read_only
    delete_file = move = copy_file = open_output_stream = open_append_stream = _read_only


def confined_local_filesystem(policy: SourcePolicy) -> pafs.FileSystem:
    """The local filesystem whose every opened file is a regular file inside the roots."""
    return pafs.PyFileSystem(_ConfinedHandler(policy))
