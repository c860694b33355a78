"""The worker's reaper is a Periodic: its round, called directly with a clock the test moves,
requeues an expired run and says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from egress.container import Container
from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.status import RunStatus
from tests.conftest import make_settings
from tests.support.factories import BARE_SPEC

T0 = datetime(2026, 5, 28, 14, 0, tzinfo=UTC)


def test_the_reaper_round_requeues_an_expired_run(tmp_path: Path, metadata_url: str) -> None:
    now = [T0]
    c = Container.build(make_settings(tmp_path, metadata_url, lease_s=30), clock=lambda: now[0])
    try:
        ws = c.workspaces.ensure_workspace("a")
        conn = c.connections.create(ws, "src", "sqlite", {"path": "/x.db"}, None)
        tpl = c.templates.create_custom(
            ws, conn.id, "t", TableRef("main", "t"), [ColumnInfo("id", "int64")], ["id"], None, None
        )
        values = {"name": "cfg", "template_id": tpl.id, "fields": None, "format": "csv"}
        values |= {"compression": "none", "destination": {"type": "storage", "path": ""}}
        cfg = c.configurations.create(ws, values | {"file_name_pattern": None})
        execution, _ = c.executions.create(ws, cfg.id, BARE_SPEC, "api", T0)
        assert c.run_queue.claim("lost-worker", timedelta(seconds=30), T0) is not None

        worker = c.worker()
        assert worker.reaper.interval == 5.0  # a third of the lease, at most 5 s
        assert worker.reaper.run_once().requeued == 0  # the lease still runs
        now[0] = T0 + timedelta(seconds=31)
        counts = worker.reaper.run_once()
        assert (counts.requeued, counts.failed, counts.cancelled) == (1, 0, 0)
        latest = c.executions.get(ws, cfg.id, execution.id).latest
        assert (latest.status, latest.attempt) == (RunStatus.PENDING, 2)

    finally:
        c.engine.dispose()
