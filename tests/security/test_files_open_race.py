"""Files a tenant names, checked when they are opened.

A files connection's data file swapped for a symlink after the run listed and checked it:
Arrow opened each file by name, lazily, seconds later, and read the symlink's target — another
workspace's output in Egress's storage came out in the caller's file. Every file is now checked
when it is opened, on the descriptor that is read (``sources/confined_fs.py``)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress.container import Container
from egress.domain.status import RunStatus
from egress.sources.base import SourceError
from egress.sources.files import FilesSource
from egress.sources.sqlite import SqliteSettings, SqliteSource
from tests.support.factories import extract_once, sqlite_container
from tests.support.policy import policy_for


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


def test_a_fifo_named_as_a_sqlite_database_is_refused_at_once(tmp_path: Path) -> None:
    """Opening a FIFO blocked in C until a writer came, past every timeout: each /test or
    browse held a slot of the shared source pool for good, and once the pool was full every
    workspace's calls were 429."""
    fifo = tmp_path / "pipe.db"
    os.mkfifo(fifo)
    source = SqliteSource(SqliteSettings(path=str(fifo)), {}, policy_for(tmp_path))
    outcome: list[BaseException | None] = []

    def check() -> None:
        try:
            source.check()
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)
        else:
            outcome.append(None)

    worker = threading.Thread(target=check, daemon=True)
    worker.start()
    worker.join(timeout=5)
    if worker.is_alive():
        with open(fifo, "wb"):  # let the blocked open() return, so the thread ends
            pass
        pytest.fail("opening a FIFO as a SQLite database blocked")
    assert isinstance(outcome[0], SourceError), outcome
    assert "as a SQLite database" in str(outcome[0])
