"""A PostgreSQL run's calls share one session (issue 19, the 1,000-execution drain): the
column check, the estimate, the quoting of the query and the COPY used to open one session
each, and a session is most of a tiny run's cost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress.container import Container
from egress.db.migrate import upgrade
from egress.domain.status import RunStatus
from egress.sources.postgresql import PostgresSource
from tests.conftest import PgDatabase, make_settings
from tests.support.factories import extract_once


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    upgrade(settings.resolved_database_url)
    container = Container.build(settings)
    yield container
    container.engine.dispose()


@pytest.mark.parametrize(("fmt", "rows"), [("csv", b'1,"a"\n2,"b"\n'), ("jsonl", b'"id":2')])
def test_a_run_opens_one_session(
    c: Container,
    pg_db: PgDatabase,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
    rows: bytes,
) -> None:
    """CSV reads on that session (COPY); JSONL reads on an ADBC session of its own."""
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE tiny (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO tiny VALUES (1, 'a'), (2, 'b')")
    opened: list[Any] = []
    connect = PostgresSource._psycopg

    def counted(self: PostgresSource) -> Any:
        opened.append(connect(self))
        return opened[-1]

    settings = {"host": "127.0.0.1", "port": 5432, "database": pg_db.name, "user": "postgres"}
    monkeypatch.setattr(PostgresSource, "_psycopg", counted)
    run, data = extract_once(c, "postgresql", settings, "tiny", fmt)
    assert run.status is RunStatus.COMPLETED and run.record_count == 2, run.error_message
    assert rows in data
    # One for discovering the template (an interactive call), one for the whole run.
    assert len(opened) == 2
    assert all(conn.closed for conn in opened)
