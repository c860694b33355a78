"""Historical backfill on a real metadata database and source, driven by an injected clock:
windows enqueued one at a time cover the range with no gap or overlap, survive a restart
half-way, never touch the watermark; moving the date earlier adds only what is not covered;
clearing it cancels what has not started."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from egress.container import Container
from egress.domain.errors import Invalid
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from tests.conftest import make_settings
from tests.integration.test_scheduler import Clock, _records, _template
from tests.support.factories import configuration_values
from tests.support.migrated import migrate

NOW = datetime(2026, 6, 10, 12, tzinfo=UTC)
FIRST_DAY = datetime(2026, 5, 8)
# Two records a day, one at exactly midnight: ids 1, 2 on 8 May, 3, 4 on 9 May, ...
ROWS = [
    (2 * d + k + 1, (FIRST_DAY + timedelta(days=d, hours=12 * k)).isoformat(sep=" "))
    for d in range(33)
    for k in range(2)
]


def _ids_between(start: str, end: str) -> list[str]:
    return [str(i) for i, at in ROWS if start <= at < end]


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    clock.now = NOW
    return clock


def _build(tmp_path: Path, clock: Clock) -> Container:
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    return Container.build(settings, clock=clock)


@pytest.fixture
def c(tmp_path: Path, clock: Clock) -> Iterator[Container]:
    container = _build(tmp_path, clock)
    yield container
    container.engine.dispose()
    container.warehouse.engine.dispose()


def _source(tmp_path: Path) -> Path:
    path = tmp_path / "events.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, happened TIMESTAMP)")
        db.executemany("INSERT INTO events VALUES (?, ?)", ROWS)
    return path


def _drain(c: Container, ws: str, cfg: str) -> list[tuple[str, str, list[str]]]:
    """Let the scheduler and the worker take turns until the backfill has nothing left; each
    window's (dateFrom, dateTo, record ids), in the order they ran."""
    done = []
    while fired := c.scheduler_service().run_once():
        [one] = fired
        assert one.trigger == "backfill"
        assert c.scheduler_service().run_once() == []  # one window at a time
        assert c.worker().run_once()
        execution = c.executions.get(ws, cfg, one.execution_id)
        options = execution.spec.options
        assert options.date_to_exclusive and not options.extract_only_new
        assert options.date_from is not None and options.date_to is not None
        done.append((options.date_from, options.date_to, _records(c, ws, cfg, execution.id)))
    return done


def test_backfill_covers_the_range_once_across_a_restart_and_a_move(
    c: Container, clock: Clock, tmp_path: Path
) -> None:
    ws = c.workspaces.ensure_workspace("t")
    tpl = _template(c, ws, _source(tmp_path))
    configs = c.services.configurations
    record = configs.create(
        ws,
        configuration_values(
            tpl,
            "history",
            sync_historical_data="2026-05-20",
            backfill_window="week",
            extract_only_new=True,  # the backfill ignores it
        ),
    )
    configs.submit(ws, record.id)
    progress = configs.get(ws, record.id).backfill
    assert progress is not None
    assert (progress.start, progress.windows_total, progress.windows_done) == ("2026-05-20", 4, 0)

    # two windows, then a "restart": a new container (scheduler and worker) on the same data
    first = []
    for _ in range(2):
        [fired] = c.scheduler_service().run_once()
        assert c.worker().run_once()
        first.append(c.executions.get(ws, record.id, fired.execution_id))
    c.engine.dispose()
    restarted = _build(tmp_path, clock)
    rest = _drain(restarted, ws, record.id)
    windows = [
        (e.spec.options.date_from, e.spec.options.date_to, _records(restarted, ws, record.id, e.id))
        for e in first
    ] + rest
    assert [(lo[:10], hi[:10]) for lo, hi, _ in windows] == [
        ("2026-05-20", "2026-05-25"),
        ("2026-05-25", "2026-06-01"),
        ("2026-06-01", "2026-06-08"),
        ("2026-06-08", "2026-06-10"),
    ]
    for lo, hi, ids in windows:  # exactly the records of each half-open window
        assert ids == _ids_between(lo[:10], hi[:10])
    everything = [i for _, _, ids in windows for i in ids]
    assert sorted(everything, key=int) == _ids_between("2026-05-20", "2026-06-10")
    assert len(everything) == len(set(everything))  # midnight records are in one window only
    after = restarted.services.configurations.get(ws, record.id)
    assert after.watermark is None  # backfill runs never move the watermark
    assert after.backfill is not None
    assert (after.backfill.windows_total, after.backfill.windows_done) == (4, 4)

    # moving the date earlier enqueues only the days not covered yet
    moved = restarted.services.configurations.update(
        ws, record.id, {"sync_historical_data": "2026-05-15"}
    )
    assert moved.backfill is not None and moved.backfill.windows_total == 6
    more = _drain(restarted, ws, record.id)
    assert [(lo[:10], hi[:10]) for lo, hi, _ in more] == [
        ("2026-05-15", "2026-05-18"),
        ("2026-05-18", "2026-05-20"),
    ]
    assert [i for _, _, ids in more for i in ids] == _ids_between("2026-05-15", "2026-05-20")

    # clearing it cancels the window not started yet
    restarted.services.configurations.update(ws, record.id, {"sync_historical_data": "2026-05-13"})
    manual, _ = restarted.services.executions.trigger(ws, record.id, {"extractOnlyNew": False})
    [queued] = restarted.scheduler_service().run_once()  # held behind the manual run
    cleared = restarted.services.configurations.update(
        ws, record.id, {"sync_historical_data": None}
    )
    assert cleared.backfill is None and cleared.sync_historical_data is None
    status = restarted.executions.get(ws, record.id, queued.execution_id).latest.status
    assert status is RunStatus.CANCELLED
    assert restarted.executions.get(ws, record.id, manual.id).latest.status is RunStatus.PENDING
    assert restarted.scheduler_service().run_once() == []
    restarted.engine.dispose()
    restarted.warehouse.engine.dispose()


def test_backfill_needs_a_date_field_and_a_past_day(c: Container, tmp_path: Path) -> None:
    ws = c.workspaces.ensure_workspace("t")
    tpl = _template(c, ws, _source(tmp_path))
    configs = c.services.configurations
    with pytest.raises(Invalid) as exc:
        configs.create(ws, configuration_values(tpl, "a", sync_historical_data="2026-06-10"))
    assert exc.value.errors[0].loc == ("body", "sync_historical_data")
    assert "before today" in exc.value.errors[0].msg
    with pytest.raises(Invalid, match="not an ISO date"):
        configs.create(ws, configuration_values(tpl, "a", sync_historical_data="10/06/2026"))
    conn = c.connections.list_page(ws, PageRequest(0, 10)).items[0]
    plain = c.templates.create_custom(
        ws, conn.id, "nodate", None, [], [], None, None, query="SELECT 1 AS one"
    )
    with pytest.raises(Invalid, match="no dateField"):
        configs.create(ws, configuration_values(plain.id, "b", sync_historical_data="2026-01-01"))


def test_a_window_cancelled_by_a_pause_runs_again_after_resume(
    c: Container, tmp_path: Path
) -> None:
    ws = c.workspaces.ensure_workspace("t")
    tpl = _template(c, ws, _source(tmp_path))
    configs = c.services.configurations
    record = configs.create(
        ws,
        configuration_values(
            tpl, "paused", sync_historical_data="2026-06-07", backfill_window="day"
        ),
    )
    configs.submit(ws, record.id)
    [first] = c.scheduler_service().run_once()
    configs.pause(ws, record.id, cancel_queued=True)
    assert c.executions.get(ws, record.id, first.execution_id).latest.status is RunStatus.CANCELLED
    assert c.scheduler_service().run_once() == []  # paused
    configs.resume(ws, record.id)
    windows = _drain(c, ws, record.id)
    assert [(lo[:10], ids) for lo, _, ids in windows] == [
        ("2026-06-07", _ids_between("2026-06-07", "2026-06-08")),
        ("2026-06-08", _ids_between("2026-06-08", "2026-06-09")),
        ("2026-06-09", _ids_between("2026-06-09", "2026-06-10")),
    ]
    progress = configs.get(ws, record.id).backfill
    assert progress is not None
    assert (progress.windows_total, progress.windows_done, progress.windows_failed) == (3, 3, 0)


def test_the_backfill_end_is_today_and_moves_as_days_pass(
    c: Container, clock: Clock, tmp_path: Path
) -> None:
    ws = c.workspaces.ensure_workspace("t")
    tpl = _template(c, ws, _source(tmp_path))
    configs = c.services.configurations
    record = configs.create(
        ws, configuration_values(tpl, "moving", sync_historical_data="2026-06-08")
    )
    configs.submit(ws, record.id)
    windows = _drain(c, ws, record.id)
    assert [(lo[:10], hi[:10]) for lo, hi, _ in windows] == [("2026-06-08", "2026-06-10")]

    clock.now = NOW + timedelta(hours=11)  # still 10 June (UTC): today is not over
    assert c.scheduler_service().run_once() == []
    clock.now = NOW + timedelta(days=2)  # two days later: the days since, in one window
    later = _drain(c, ws, record.id)
    assert [(lo[:10], hi[:10], ids) for lo, hi, ids in later] == [
        ("2026-06-10", "2026-06-12", _ids_between("2026-06-10", "2026-06-12"))
    ]
    progress = configs.get(ws, record.id).backfill
    assert progress is not None
    assert (progress.windows_total, progress.windows_done) == (2, 2)


def test_a_window_whose_run_is_cancelled_counts_as_failed(c: Container, tmp_path: Path) -> None:
    """Cancelled on its own (not by a pause), a window is not retried, like a failed one: it
    counts among windowsFailed, so the progress adds up (it was counted nowhere: 3 = 2 + 0)."""
    ws = c.workspaces.ensure_workspace("t")
    tpl = _template(c, ws, _source(tmp_path))
    configs = c.services.configurations
    record = configs.create(
        ws,
        configuration_values(
            tpl, "cancelled", sync_historical_data="2026-06-07", backfill_window="day"
        ),
    )
    configs.submit(ws, record.id)
    [first] = c.scheduler_service().run_once()
    c.services.executions.cancel(ws, record.id, first.execution_id)
    windows = _drain(c, ws, record.id)
    assert [lo[:10] for lo, _, _ in windows] == ["2026-06-08", "2026-06-09"]
    progress = configs.get(ws, record.id).backfill
    assert progress is not None
    assert (progress.windows_total, progress.windows_done, progress.windows_failed) == (3, 2, 1)
