"""Migrated metadata databases for tests, copied instead of migrated again.

Migrating an empty database through every revision takes 2 to 3 s (SQLite rebuilds tables in
batch mode), and the suite needs hundreds of them: each process migrates one SQLite file and
one PostgreSQL template once (``pg_migrated`` in tests/conftest.py), and every test gets a
copy. Migrating from nothing is still
tested where it is the subject: tests/integration/test_repositories.py (revision by revision),
and every server started outside ``start_server`` (the CLI, the README, the demo).
"""

from __future__ import annotations

import functools
import sqlite3
import tempfile
from pathlib import Path

from egress.db.migrate import upgrade


@functools.cache
def _sqlite_template() -> Path:
    path = Path(tempfile.mkdtemp(prefix="egress-migrated-")) / "egress.db"
    upgrade(f"sqlite:///{path}")
    return path


def copy_migrated(path: Path) -> bool:
    """Put a migrated SQLite metadata database at ``path`` unless one is there; whether it did.
    The online backup API copies the pages still in the template's WAL too."""
    if path.exists() and path.stat().st_size:
        return False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600)  # as private as the server's own (its umask is 077)
    source, target = sqlite3.connect(_sqlite_template()), sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return True


def migrate(database_url: str) -> None:
    """``upgrade(database_url)``, by copying the migrated template for a new SQLite file."""
    prefix = "sqlite:///"
    if not (database_url.startswith(prefix) and copy_migrated(Path(database_url[len(prefix) :]))):
        upgrade(database_url)
