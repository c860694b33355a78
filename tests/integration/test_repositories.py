"""The metadata repositories, one behavioural suite on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from egress.db.configurations import ConfigurationRepo
from egress.db.connections import ConnectionRepo
from egress.db.engine import make_engine
from egress.db.executions import ExecutionRepo, FileRecord
from egress.db.leftovers import LeftoverRepo
from egress.db.migrate import upgrade
from egress.db.run_queue import ClaimedRun, Outcome, RunQueue
from egress.db.tables import metadata, runs
from egress.db.templates import TemplateRepo
from egress.db.workspaces import WorkspaceRepo
from egress.domain.catalog import ColumnInfo, TableInfo, TableRef
from egress.domain.errors import Conflict, NotFound
from egress.domain.paging import PageRequest
from egress.domain.plan import plan_from_snapshot
from egress.domain.spec import ExecutionSpec
from egress.domain.status import RunStatus
from tests.support.factories import BARE_SPEC

T0 = datetime(2026, 5, 28, 14, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


class Repos:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.workspaces = WorkspaceRepo(self.engine)
        self.connections = ConnectionRepo(self.engine)
        self.templates = TemplateRepo(self.engine)
        self.configurations = ConfigurationRepo(self.engine)
        self.executions = ExecutionRepo(self.engine)
        self.queue = RunQueue(self.engine)

    def configuration(self, ws: str, name: str) -> str:
        conn = self.connections.create(ws, f"c_{name}", "sqlite", {"path": "/x.db"}, None)
        tpl = self.templates.create_custom(
            ws, conn.id, "t", TableRef("main", "t"), [ColumnInfo("id", "int64")], ["id"], None, None
        )
        cfg = self.configurations.create(
            ws,
            {
                "name": name,
                "template_id": tpl.id,
                "fields": None,
                "format": "csv",
                "compression": "none",
                "destination": {"type": "storage", "path": ""},
                "file_name_pattern": None,
                "start_date": None,
                "end_date": None,
            },
        )
        return cfg.id


@pytest.fixture
def repos(metadata_url: str) -> Repos:
    return Repos(metadata_url)


def test_migrations_match_the_models(repos: Repos) -> None:
    with repos.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_workspaces_are_ensured_once(repos: Repos) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    assert repos.workspaces.ensure_workspace("a") == ws


def test_workspaces_are_isolated(repos: Repos) -> None:
    a = repos.workspaces.ensure_workspace("a")
    b = repos.workspaces.ensure_workspace("b")
    cfg = repos.configuration(a, "mine")
    conn_id = repos.connections.list_page(a, PageRequest()).items[0].id
    with pytest.raises(NotFound):
        repos.connections.get(b, conn_id)
    with pytest.raises(NotFound):
        repos.configurations.get(b, cfg)
    with pytest.raises(NotFound):
        repos.connections.delete(b, conn_id)
    assert repos.connections.list_page(b, PageRequest()).total == 0
    assert repos.configurations.list_page(b, None, PageRequest()).total == 0
    ex, _ = repos.executions.create(a, cfg, BARE_SPEC, "api", T0)
    with pytest.raises(NotFound):
        repos.executions.get(b, cfg, ex.id)


def test_names_are_unique_per_workspace_and_used_connections_stay(repos: Repos) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    repos.configuration(ws, "x")
    conn_id = repos.connections.list_page(ws, PageRequest()).items[0].id
    with pytest.raises(Conflict, match="already exists"):
        repos.connections.create(ws, "c_x", "sqlite", {"path": "/y.db"}, None)
    with pytest.raises(Conflict, match="x"):
        repos.connections.delete(ws, conn_id)


def test_a_table_appearing_under_a_custom_templates_name_leaves_that_template(
    repos: Repos,
) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    conn = repos.connections.create(ws, "src", "sqlite", {"path": "/x.db"}, None)
    mine = repos.templates.create_custom(
        ws,
        conn.id,
        "main.later",
        TableRef("main", "t"),
        [ColumnInfo("id", "int64")],
        ["id"],
        None,
        None,
    )
    table = TableInfo("main", "later", [ColumnInfo("x", "string")])
    repos.templates.sync_discovered(ws, conn.id, [table, TableInfo("main", "t", [])])
    names = {
        (t.name, t.kind, t.id == mine.id)
        for t in repos.templates.list_page(ws, conn.id, PageRequest()).items
    }
    assert names == {("main.later", "custom", True), ("main.t", "discovered", False)}


def test_paging(repos: Repos) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    for i in range(5):
        repos.connections.create(ws, f"c{i}", "sqlite", {"path": "/x.db"}, None)
    page = repos.connections.list_page(ws, PageRequest(page=2, limit=2))
    assert page.total == 5 and [c.name for c in page.items] == ["c4"]


def test_one_active_run_per_configuration_is_a_database_invariant(repos: Repos) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    cfg = repos.configuration(ws, "x")
    ex, _ = repos.executions.create(ws, cfg, BARE_SPEC, "api", T0)
    with pytest.raises(IntegrityError), repos.engine.begin() as conn:
        conn.execute(
            runs.insert().values(
                id="dup",
                workspace_id=ws,
                execution_id=ex.id,
                configuration_id=cfg,
                run_number=2,
                status="PENDING",
                attempt=1,
                queued_at=T0,
                cancel_requested=False,
            )
        )


def _leftover_tokens(repos: Repos, now: datetime) -> list[str]:
    """The attempts whose storage leftovers the reaper has recorded for deleting."""
    return [s.leftover.lease_token for s in LeftoverRepo(repos.engine).due(now, 10)]


def test_fencing_a_zombie_cannot_finish_after_its_lease_was_taken(repos: Repos) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    cfg = repos.configuration(ws, "x")
    ex, _ = repos.executions.create(ws, cfg, BARE_SPEC, "api", T0)
    zombie = repos.queue.claim("w1", LEASE, T0)
    assert zombie is not None
    counts = repos.queue.reap(T0 + LEASE * 2, max_attempts=3)
    assert (counts.requeued, counts.failed) == (1, 0)
    assert _leftover_tokens(repos, T0 + LEASE * 2) == [zombie.lease_token]
    fresh = repos.queue.claim("w2", LEASE, T0 + LEASE * 2)
    assert fresh is not None and fresh.lease_token != zombie.lease_token and fresh.attempt == 2
    assert not repos.queue.finish(zombie, Outcome(RunStatus.COMPLETED, 1), T0)
    assert not repos.queue.heartbeat(zombie.run_id, zombie.lease_token, 5, LEASE, T0).alive
    assert not repos.queue.mark_publishing(zombie, ["k"])
    assert repos.queue.finish(fresh, Outcome(RunStatus.COMPLETED, 7), T0 + LEASE * 3)
    latest = repos.executions.get(ws, cfg, ex.id).latest
    assert (latest.status, latest.record_count, latest.process_id) == (RunStatus.COMPLETED, 7, "w2")


def test_reaper_fails_a_run_after_the_last_attempt(repos: Repos) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    cfg = repos.configuration(ws, "x")
    ex, _ = repos.executions.create(ws, cfg, BARE_SPEC, "api", T0)
    held, _ = repos.executions.create(ws, cfg, BARE_SPEC, "api", T0 + timedelta(seconds=1))
    now = T0
    for _ in range(2):
        assert repos.queue.claim("w", LEASE, now) is not None
        now += LEASE * 2
        repos.queue.reap(now, max_attempts=2)
    latest = repos.executions.get(ws, cfg, ex.id).latest
    assert latest.status is RunStatus.FAILED
    assert latest.error_message == "worker lost after 2 attempts"
    assert repos.executions.get(ws, cfg, held.id).latest.status is RunStatus.PENDING


def test_concurrent_triggers_queue_one_pending_and_the_rest_on_hold(repos: Repos) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    cfg = repos.configuration(ws, "x")
    errors: list[BaseException] = []

    def trigger() -> None:
        try:
            repos.executions.create(ws, cfg, BARE_SPEC, "api", datetime.now(UTC))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=trigger) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with repos.engine.connect() as conn:
        statuses = sorted(conn.execute(sa.select(runs.c.status)).scalars())
    assert statuses == ["ON_HOLD"] * 7 + ["PENDING"]


def test_concurrent_claims_take_each_run_once(repos: Repos) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    for i in range(20):
        repos.executions.create(ws, repos.configuration(ws, f"c{i}"), BARE_SPEC, "api", T0)
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (run := repos.queue.claim(name, LEASE, T0)) is not None:
            with lock:
                claimed.append(run.run_id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == 20 and len(set(claimed)) == 20


def _claimed_with_cancel_requested(repos: Repos, ws: str, cfg: str) -> tuple[str, ClaimedRun]:
    ex, _ = repos.executions.create(ws, cfg, BARE_SPEC, "api", T0)
    claimed = repos.queue.claim("w1", LEASE, T0)
    assert claimed is not None
    repos.executions.cancel(ws, cfg, ex.id, T0)
    return ex.id, claimed


def test_the_reaper_ends_a_cancel_requested_run_cancelled_never_pending(repos: Repos) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    cfg = repos.configuration(ws, "x")
    eid, zombie = _claimed_with_cancel_requested(repos, ws, cfg)
    held, _ = repos.executions.create(ws, cfg, BARE_SPEC, "api", T0 + timedelta(seconds=1))
    counts = repos.queue.reap(T0 + LEASE * 2, max_attempts=3)
    assert (counts.requeued, counts.failed, counts.cancelled) == (0, 0, 1)
    assert _leftover_tokens(repos, T0 + LEASE * 2) == [zombie.lease_token]
    run = repos.executions.get(ws, cfg, eid).latest
    assert (run.status, run.attempt, run.error_message) == (RunStatus.CANCELLED, 1, None)
    assert run.completed_at is not None
    # Nothing left to claim but the held run, released because the active one ended.
    assert repos.executions.get(ws, cfg, held.id).latest.status is RunStatus.PENDING
    again = repos.queue.claim("w2", LEASE, T0 + LEASE * 2)
    assert again is not None and again.execution_id == held.id
    assert not repos.queue.finish(zombie, Outcome(RunStatus.COMPLETED, 1), T0 + LEASE * 3)
    assert repos.executions.get(ws, cfg, eid).latest.status is RunStatus.CANCELLED


def test_a_run_given_back_at_shutdown_after_a_cancel_request_ends_cancelled(
    repos: Repos,
) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    cfg = repos.configuration(ws, "x")
    eid, claimed = _claimed_with_cancel_requested(repos, ws, cfg)
    assert repos.queue.release(claimed, T0) is RunStatus.CANCELLED
    assert repos.executions.get(ws, cfg, eid).latest.status is RunStatus.CANCELLED
    assert repos.queue.claim("w2", LEASE, T0) is None
    assert repos.queue.release(claimed, T0) is None  # the lease is gone


def test_release_requeues_without_counting_against_the_attempts(repos: Repos) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    cfg = repos.configuration(ws, "x")
    ex, _ = repos.executions.create(ws, cfg, BARE_SPEC, "api", T0)
    for attempt in (1, 2, 3):
        claimed = repos.queue.claim("w", LEASE, T0)
        assert claimed is not None and claimed.attempt == attempt
        assert repos.queue.release(claimed, T0) is RunStatus.PENDING
    run = repos.executions.get(ws, cfg, ex.id).latest
    assert (run.status, run.attempt, run.error_message) == (RunStatus.PENDING, 4, None)


def test_a_failed_attempt_is_retried_then_fails_with_its_reason(repos: Repos) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    cfg = repos.configuration(ws, "x")
    ex, _ = repos.executions.create(ws, cfg, BARE_SPEC, "api", T0)
    held, _ = repos.executions.create(ws, cfg, BARE_SPEC, "api", T0 + timedelta(seconds=1))
    first = repos.queue.claim("w", LEASE, T0)
    assert first is not None
    assert repos.queue.fail_attempt(first, T0, 2, "stalled") is RunStatus.PENDING
    run = repos.executions.get(ws, cfg, ex.id).latest
    assert (run.status, run.attempt, run.error_message) == (
        RunStatus.PENDING,
        2,
        "stalled; attempt 1 of 2",
    )
    assert repos.queue.fail_attempt(first, T0, 2, "stalled") is None  # fenced
    second = repos.queue.claim("w", LEASE, T0)
    assert second is not None and second.attempt == 2
    assert repos.queue.fail_attempt(second, T0, 2, "stalled") is RunStatus.FAILED
    run = repos.executions.get(ws, cfg, ex.id).latest
    assert (run.status, run.attempt, run.error_message) == (
        RunStatus.FAILED,
        2,
        "stalled; attempt 2 of 2",
    )
    assert repos.executions.get(ws, cfg, held.id).latest.status is RunStatus.PENDING


def test_a_failed_attempt_of_a_cancel_requested_run_ends_cancelled(repos: Repos) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    cfg = repos.configuration(ws, "x")
    eid, claimed = _claimed_with_cancel_requested(repos, ws, cfg)
    assert repos.queue.fail_attempt(claimed, T0, 3, "stalled") is RunStatus.CANCELLED
    run = repos.executions.get(ws, cfg, eid).latest
    assert (run.status, run.attempt, run.error_message) == (RunStatus.CANCELLED, 1, None)


def test_a_queued_run_with_a_cancel_request_is_never_claimed_and_reaped_cancelled(
    repos: Repos,
) -> None:
    """What an older version left behind: a released run still carrying its cancel request."""
    ws = repos.workspaces.ensure_workspace("a")
    cfg = repos.configuration(ws, "x")
    ex, _ = repos.executions.create(ws, cfg, BARE_SPEC, "api", T0)
    held, _ = repos.executions.create(ws, cfg, BARE_SPEC, "api", T0 + timedelta(seconds=1))
    with repos.engine.begin() as conn:
        conn.execute(
            runs.update().where(runs.c.execution_id == ex.id).values(cancel_requested=True)
        )
    assert repos.queue.claim("w", LEASE, T0) is None
    counts = repos.queue.reap(T0, max_attempts=3)
    assert counts.cancelled == 1
    assert repos.executions.get(ws, cfg, ex.id).latest.status is RunStatus.CANCELLED
    assert repos.executions.get(ws, cfg, held.id).latest.status is RunStatus.PENDING


def test_discovered_templates_of_dotted_names_never_collide(repos: Repos) -> None:
    """Schema "x.y" table z and schema x table "y.z" are two templates (was one name, 500)."""
    ws = repos.workspaces.ensure_workspace("a")
    conn = repos.connections.create(ws, "pg", "postgresql", {"host": "h"}, None)
    tables = [TableInfo("x.y", "z", []), TableInfo("x", "y.z", []), TableInfo('a"b', "c", [])]
    repos.templates.sync_discovered(ws, conn.id, tables)
    repos.templates.sync_discovered(ws, conn.id, tables)  # again: the same three, same ids
    listed = {t.name: t.source for t in repos.templates.list_page(ws, conn.id, PageRequest()).items}
    assert listed == {
        '"x.y".z': TableRef("x.y", "z"),
        'x."y.z"': TableRef("x", "y.z"),
        '"a""b".c': TableRef('a"b', "c"),
    }


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_0011_keeps_existing_templates_and_snapshots_reading_the_same_table(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Rows from before 0011 get the parts the old first-dot split gave them (what they read),
    files templates their path, SQL templates none; frozen execution snapshots too."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("pg_factory")("egress_mig").sqlalchemy_url
    upgrade(url, "0010")
    old = Repos(url)
    ws = old.workspaces.ensure_workspace("a")
    pg = old.connections.create(ws, "pg", "postgresql", {"host": "h"}, None)
    files = old.connections.create(ws, "files", "files", {"url": "file:///x"}, None)
    now = datetime.now(UTC)
    tpl = sa.table(
        "templates",
        *(sa.column(c) for c in ("id", "workspace_id", "connection_id", "name", "kind")),
        *(sa.column(c) for c in ("source_table", "query", "created_at", "updated_at")),
        sa.column("fields", sa.JSON),
        sa.column("primary_key", sa.JSON),
    )
    rows = [
        ("t1", pg.id, "public.orders", None),
        ("t2", pg.id, "x.y.z", None),
        ("t3", files.id, "sales/2026-01.csv", None),
        ("t4", pg.id, "", "SELECT 1 AS one"),
    ]
    with old.engine.begin() as conn:
        for tid, cid, source, query in rows:
            conn.execute(
                tpl.insert().values(
                    id=tid,
                    workspace_id=ws,
                    connection_id=cid,
                    name=f"n{tid}",
                    kind="custom",
                    source_table=source,
                    query=query,
                    fields=[],
                    primary_key=[],
                    created_at=now,
                    updated_at=now,
                )
            )
    # Written as 0010 had it: today's repository reads columns added after 0010.
    cfg = "c1"
    with old.engine.begin() as conn:
        conn.execute(
            sa.table(
                "extraction_configurations",
                *(sa.column(c) for c in ("id", "workspace_id", "name", "template_id", "format")),
                *(sa.column(c) for c in ("compression", "status", "version")),
                *(sa.column(c) for c in ("created_at", "updated_at")),
                sa.column("destination", sa.JSON),
            )
            .insert()
            .values(
                id=cfg,
                workspace_id=ws,
                name="c",
                template_id="t2",
                format="csv",
                compression="none",
                status="DRAFT",
                version=1,
                created_at=now,
                updated_at=now,
                destination={"type": "storage", "path": ""},
            )
        )
    snapshot = {
        "template": {
            "sourceTable": "x.y.z",
            "query": None,
            "fields": [{"name": "id", "type": "int64"}],
        },
        "configuration": {"fields": None},
        "connection": {"id": pg.id, "type": "postgresql"},
    }
    with old.engine.begin() as conn:
        conn.execute(
            sa.table(
                "executions",
                *(sa.column(c) for c in ("id", "workspace_id", "configuration_id", "trigger")),
                sa.column("created_at"),
                sa.column("parameters", sa.JSON),
            )
            .insert()
            .values(
                id="e1",
                workspace_id=ws,
                configuration_id=cfg,
                trigger="MANUAL",
                created_at=now,
                parameters=snapshot,
            )
        )
    old.engine.dispose()
    upgrade(url)
    repos = Repos(url)
    with repos.engine.connect() as conn:
        frozen = conn.execute(
            sa.text("SELECT parameters FROM executions WHERE id = 'e1'")
        ).scalar_one()
    frozen = json.loads(frozen) if isinstance(frozen, str) else frozen
    assert plan_from_snapshot(ExecutionSpec.from_json(frozen)).table == TableRef("x", "y.z")
    sources = {tid: repos.templates.get(ws, tid).source for tid, *_ in rows}
    assert sources == {
        "t1": TableRef("public", "orders"),
        "t2": TableRef("x", "y.z"),
        "t3": TableRef(None, "sales/2026-01.csv"),
        "t4": None,
    }


def test_a_cancel_accepted_while_the_run_published_wins_over_its_files(repos: Repos) -> None:
    """The API answered the cancel 200 while the run was writing: it ends CANCELLED with no
    files and nothing delivered (the runner deletes what it published), not COMPLETED."""
    ws = repos.workspaces.ensure_workspace("a")
    cfg = repos.configuration(ws, "x")
    eid, claimed = _claimed_with_cancel_requested(repos, ws, cfg)
    file = FileRecord(None, None, "k/x.csv", "x.csv", "text/csv", 10, "0" * 64, 3)
    done = Outcome(RunStatus.COMPLETED, 3, files=[file])
    assert repos.queue.finish(claimed, done, T0) is RunStatus.CANCELLED
    run = repos.executions.get(ws, cfg, eid).latest
    assert (run.status, run.record_count, run.files, run.processed) == (
        RunStatus.CANCELLED,
        0,
        [],
        3,
    )


def test_a_finish_records_its_files_as_given(repos: Repos) -> None:
    """The files go in with the workspace's lock (one statement on PostgreSQL, the rows a JSON
    array): every value comes back as given, whatever the text, and sizes past 32 bits."""
    ws = repos.workspaces.ensure_workspace("a")
    cfg = repos.configuration(ws, "x")
    ex, _ = repos.executions.create(ws, cfg, BARE_SPEC, "api", T0)
    claimed = repos.queue.claim("w1", LEASE, T0)
    assert claimed is not None
    files = [
        FileRecord("1", 'Zürich "Nord"\n\\', "k/z.csv", "z.csv", "text/csv", 5 << 32, "a" * 64, 7),
        FileRecord("2", None, "k/n.csv", "n.csv", "text/csv", 0, "b" * 64, 0),
    ]
    done = Outcome(RunStatus.COMPLETED, 7, files=files)
    assert repos.queue.finish(claimed, done, T0 + timedelta(microseconds=1)) is RunStatus.COMPLETED
    run = repos.executions.get(ws, cfg, ex.id).latest
    assert run.files == files


def test_a_data_table_load_merged_before_the_cancel_stays_completed(repos: Repos) -> None:
    """Merged rows cannot be taken back: the late cancel loses (no files, rows delivered)."""
    ws = repos.workspaces.ensure_workspace("a")
    cfg = repos.configuration(ws, "x")
    eid, claimed = _claimed_with_cancel_requested(repos, ws, cfg)
    assert repos.queue.finish(claimed, Outcome(RunStatus.COMPLETED, 5), T0) is RunStatus.COMPLETED
    assert repos.executions.get(ws, cfg, eid).latest.status is RunStatus.COMPLETED


def test_the_row_estimate_goes_with_the_heartbeats_and_the_outcome(repos: Repos) -> None:
    """The source's estimate has no transaction of its own: the first heartbeat records it
    (later ones without it keep it), and so does the outcome of a run shorter than a heartbeat
    (a cancelled or failed run shows it with its progress)."""
    ws = repos.workspaces.ensure_workspace("a")
    cfg, short_cfg = repos.configuration(ws, "x"), repos.configuration(ws, "y")
    ex, _ = repos.executions.create(ws, cfg, BARE_SPEC, "api", T0)
    claimed = repos.queue.claim("w1", LEASE, T0)
    assert claimed is not None
    assert repos.queue.heartbeat(claimed.run_id, claimed.lease_token, 0, LEASE, T0, 1234).alive
    assert repos.executions.get(ws, cfg, ex.id).latest.estimated_rows == 1234
    assert repos.queue.heartbeat(claimed.run_id, claimed.lease_token, 9, LEASE, T0).alive
    assert repos.queue.finish(claimed, Outcome.stopped(RunStatus.FAILED, 9, "x"), T0)
    assert repos.executions.get(ws, cfg, ex.id).latest.estimated_rows == 1234

    short, _ = repos.executions.create(ws, short_cfg, BARE_SPEC, "api", T0)
    claimed = repos.queue.claim("w1", LEASE, T0)
    assert claimed is not None and claimed.execution_id == short.id
    cancelled = Outcome(RunStatus.COMPLETED, 2, estimated_rows=77).cancelled()
    assert cancelled.estimated_rows == 77
    assert repos.queue.finish(claimed, cancelled, T0) is RunStatus.CANCELLED
    latest = repos.executions.get(ws, short_cfg, short.id).latest
    assert (latest.status, latest.estimated_rows) == (RunStatus.CANCELLED, 77)
