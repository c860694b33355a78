"""Run Alembic migrations programmatically (``egress db upgrade`` and ``egress serve``)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on '%' in passwords.
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def migration_problem(database_url: str) -> str | None:
    """Why a process that does not migrate (``egress worker``) cannot use this metadata
    database, or None when it is at this release's head."""
    script = ScriptDirectory.from_config(alembic_config(database_url))
    head = script.get_current_head()
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    if current == head:
        return None
    upgrade_first = "run `egress db upgrade` (or start `egress serve`, which migrates) first"
    if current is None:
        return f"the metadata database has never been migrated: {upgrade_first}"
    try:
        script.get_revision(current)
    except CommandError:
        return (
            f"the metadata database is at revision {current}, which this release does not know "
            "(a newer release migrated it): run this process from that release"
        )
    return (
        f"the metadata database is at revision {current} and this release needs {head}: "
        f"{upgrade_first}"
    )
