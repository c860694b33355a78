"""A files connection's data file swapped for a symlink after the run listed and checked it:
Arrow opened each file by name, lazily, seconds later, and read the symlink's target — another
workspace's output in Egress's storage came out in the caller's file. Every file is now checked
when it is opened, on the descriptor that is read (``sources/confined_fs.py``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress.container import Container
from egress.domain.status import RunStatus
from egress.sources.files import FilesSource
from tests.support.factories import extract_once, sqlite_container


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    with sqlite_container(tmp_path) as container:
        yield container


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_file_swapped_for_a_symlink_after_listing_is_not_read(
    c: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    folder = tmp_path / "src" / "in"
    folder.mkdir(parents=True)
    (folder / "a.csv").write_text("id,v\n1,a\n")
    (folder / "z.csv").write_text("id,v\n2,z\n")
    secret = c.settings.data_dir / "files" / "secret.csv"  # as if another workspace's output
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text('id,v\n777,"SECRET"\n')
    listed = FilesSource._resolve
    swaps: list[str] = []

    def resolve_then_swap(self: FilesSource, relative: str) -> Any:
        files = listed(self, relative)  # checked the real z.csv
        if not swaps:
            (folder / "z.csv").unlink()
            os.symlink(secret, folder / "z.csv")
        swaps.append(relative)
        return files

    monkeypatch.setattr(FilesSource, "_resolve", resolve_then_swap)
    run, data = extract_once(c, "files", {"url": folder.parent.as_uri()}, "in", fmt)
    assert os.path.islink(folder / "z.csv"), "the swap happened"
    assert b"SECRET" not in data
    assert run.status is RunStatus.FAILED, run.status
    assert "must be inside a files root" in (run.error_message or ""), run.error_message
