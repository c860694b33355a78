"""Alembic environment: migrations run against the URL given by egress.db.migrate."""

from __future__ import annotations

from alembic import context

from egress.db.engine import make_engine
from egress.db.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "egress.db.migrate sets sqlalchemy.url"
engine = make_engine(url)
sqlite = url.startswith("sqlite")
with engine.connect() as connection:
    if sqlite:
        # A batch migration rebuilds a table (copy, drop, rename); with foreign keys on,
        # dropping a table other rows reference fails. The pragma is ignored inside a
        # transaction, so it is set on the driver's connection before Alembic begins one;
        # the keys are checked once the migrations are done.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        driver = connection.connection.driver_connection
        broken = driver.execute("PRAGMA foreign_key_check").fetchall()  # type: ignore[union-attr]
        driver.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
        if broken:
            raise RuntimeError(f"the migration left rows whose foreign keys break: {broken[:5]}")
engine.dispose()
