"""The claim reads the run's connection with the run (one round trip less a run, issue 19):
a connection edited between two runs is read anew by the second, on both metadata backends."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

from egress.container import Container
from egress.domain.clock import utcnow
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from tests.conftest import PgDatabase, make_settings
from tests.support.factories import submitted_configuration
from tests.support.migrated import migrate


def _items(db: PgDatabase, first: int) -> dict[str, object]:
    with db.connect() as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)")
        conn.execute(
            f"INSERT INTO items SELECT g, 'i' || g FROM generate_series({first}, {first + 2}) g"
        )
    return {"host": "127.0.0.1", "port": 5432, "database": db.name, "user": "postgres"}


def test_a_connection_edited_between_runs_is_read_anew(
    tmp_path: Path, metadata_url: str, pg_factory: object
) -> None:
    s = make_settings(tmp_path, metadata_url)
    s.ensure_data_dir()
    migrate(s.resolved_database_url)
    c = Container.build(s)
    before = _items(pg_factory(), 1)  # type: ignore[operator]
    after = _items(pg_factory(), 10)  # type: ignore[operator]
    ws = c.workspaces.ensure_workspace("t")
    conn_id = c.connections.create(ws, "pg", "postgresql", before, None).id
    c.services.catalog.discover(ws, conn_id)
    tpl = c.templates.list_page(ws, conn_id, PageRequest(0, 10)).items[0]
    cfg = submitted_configuration(c, ws, tpl.id, "items")

    def run_once() -> list[list[str]]:
        ex, _ = c.services.executions.trigger(ws, cfg, {})
        assert c.worker().run_once()
        run = c.executions.get(ws, cfg, ex.id).latest
        assert run.status is RunStatus.COMPLETED, run.error_message
        text = b"".join(c.storage.stream(run.files[0].storage_key)).decode()
        return list(csv.reader(io.StringIO(text)))

    assert run_once() == [["id", "label"], ["1", "i1"], ["2", "i2"], ["3", "i3"]]
    c.connections.update(ws, conn_id, settings=after)
    # The claim hands the worker the edited connection ...
    c.services.executions.trigger(ws, cfg, {})
    claimed = c.run_queue.claim("w", timedelta(seconds=30), utcnow())
    assert claimed is not None and claimed.connection is not None
    assert (claimed.connection.type, claimed.connection.settings) == ("postgresql", after)
    assert c.run_queue.release(claimed, utcnow()) is RunStatus.PENDING
    assert c.worker().run_once()
    # ... and the next run reads from it.
    assert run_once() == [["id", "label"], ["10", "i10"], ["11", "i11"], ["12", "i12"]]
    c.engine.dispose()
