"""Alembic environment: migrations run against the URL given by egress.db.migrate."""

from __future__ import annotations

from alembic import context

from egress.db.engine import make_engine
from egress.db.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "egress.db.migrate sets sqlalchemy.url"
engine = make_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
