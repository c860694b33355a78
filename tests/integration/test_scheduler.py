"""The scheduler on a real metadata database, driven by an injected clock (no sleeping):
firing, catch-up after downtime, half-open windows read by real runs, pause/resume, sync
status, schedules limits and ids, and exactly-once with three schedulers over PostgreSQL."""

from __future__ import annotations

import csv
import io
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from egress.api.native.presenters import configuration_out
from egress.container import Container
from egress.db.migrate import upgrade
from egress.db.tables import executions
from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.errors import Forbidden, Invalid
from egress.domain.identity import ADMIN, EDITOR
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from egress.services.scheduler import Fired
from tests.conftest import PgDatabase, make_settings
from tests.support.factories import configuration_values
from tests.support.identity import caller
from tests.support.migrated import migrate

START = datetime(2026, 6, 1, 0, 0, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _container(tmp_path: Path, url: str, clock: Clock) -> Container:
    return Container.build(make_settings(tmp_path, url), clock=clock)


@pytest.fixture
def c(tmp_path: Path, clock: Clock) -> Iterator[Container]:
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings, clock=clock)
    yield container
    container.engine.dispose()
    container.warehouse.engine.dispose()


def _source(tmp_path: Path, rows: list[tuple[int, str]]) -> Path:
    path = tmp_path / "events.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, happened TIMESTAMP)")
        db.executemany("INSERT INTO events VALUES (?, ?)", rows)
    return path


def _template(c: Container, ws: str, path: Path) -> str:
    conn = c.connections.create(ws, f"src{path.stat().st_ino}", "sqlite", {"path": str(path)}, None)
    fields = [ColumnInfo("id", "int64", False), ColumnInfo("happened", "timestamp", True)]
    tpl = c.templates.create_custom(
        ws, conn.id, "events", TableRef("main", "events"), fields, ["id"], "id", "happened"
    )
    return tpl.id


def _configuration(c: Container, ws: str, template_id: str, name: str, **values: Any) -> str:
    record = c.services.configurations.create(
        ws, configuration_values(template_id, name, **values), caller(ws, ADMIN)
    )
    c.services.configurations.submit(ws, record.id)
    return record.id


def _daily(
    cron: str = "0 1 * * *", zone: str = "UTC", window: str | None = "previousDay"
) -> dict[str, Any]:
    return {"cron": cron, "timezone": zone, "enabled": True, "date_window": window}


def _records(c: Container, ws: str, cfg: str, execution_id: str) -> list[str]:
    run = c.executions.get(ws, cfg, execution_id).latest
    assert run.status in (RunStatus.COMPLETED, RunStatus.COMPLETED_NO_DATA), run.error_message
    if not run.files:
        return []
    text = b"".join(c.storage.stream(run.files[0].storage_key)).decode()
    return [row["id"] for row in csv.DictReader(io.StringIO(text))]


def test_a_due_slot_fires_once_with_a_half_open_window_read_by_a_real_run(
    c: Container, clock: Clock, tmp_path: Path
) -> None:
    """A record at exactly midnight belongs to one day's run only."""
    path = _source(
        tmp_path,
        [
            (1, "2026-06-01 00:00:00"),
            (2, "2026-06-01 12:00:00"),
            (3, "2026-06-02 00:00:00"),
            (4, "2026-06-02 23:59:59"),
            (5, "2026-05-31 23:59:59"),
        ],
    )
    ws = c.workspaces.ensure_workspace("t")
    cfg = _configuration(c, ws, _template(c, ws, path), "daily", schedules=[_daily()])
    scheduler = c.scheduler_service()
    schedule = c.services.configurations.get(ws, cfg).schedules[0]
    assert schedule.next_due_at == datetime(2026, 6, 1, 1, tzinfo=UTC)
    assert scheduler.run_once() == []  # not due yet

    clock.now = datetime(2026, 6, 2, 1, 0, 1, tzinfo=UTC)
    fired = scheduler.run_once()
    assert [(f.trigger, f.due_at, f.catch_up) for f in fired] == [
        ("schedule", datetime(2026, 6, 2, 1, tzinfo=UTC), True)
    ]  # the 1 June slot was missed while the clock jumped a day: caught up in one firing
    assert scheduler.run_once() == []
    first = c.executions.get(ws, cfg, fired[0].execution_id)
    assert first.trigger == "schedule" and first.schedule_id == schedule.id
    assert first.catch_up is True
    # no previous window yet: the natural previousDay window
    assert first.spec.options.date_from == "2026-06-01T00:00:00+00:00"
    assert first.spec.options.date_to == "2026-06-02T00:00:00+00:00"
    assert first.spec.options.date_to_exclusive is True
    assert c.worker().run_once()
    assert _records(c, ws, cfg, first.id) == ["1", "2"]

    clock.now = datetime(2026, 6, 3, 1, 0, 0, tzinfo=UTC)
    [second] = scheduler.run_once()
    assert not second.catch_up
    execution = c.executions.get(ws, cfg, second.execution_id)
    assert execution.spec.options.date_from == "2026-06-02T00:00:00+00:00"
    assert c.worker().run_once()
    assert _records(c, ws, cfg, second.execution_id) == ["3", "4"]
    after = c.services.configurations.get(ws, cfg).schedules[0]
    assert after.last_fired_at == clock.now
    assert after.next_due_at == datetime(2026, 6, 4, 1, tzinfo=UTC)
    assert after.window_end == datetime(2026, 6, 3, tzinfo=UTC)


def test_downtime_fires_once_and_its_window_covers_everything_since_the_last(
    c: Container, clock: Clock, tmp_path: Path
) -> None:
    ws = c.workspaces.ensure_workspace("t")
    tpl = _template(c, ws, _source(tmp_path, []))
    cfg = _configuration(c, ws, tpl, "london", schedules=[_daily("0 2 * * *", "Europe/London")])
    scheduler = c.scheduler_service()
    clock.now = datetime(2026, 6, 1, 1, 0, 5, tzinfo=UTC)  # 02:00:05 BST
    [on_time] = scheduler.run_once()
    assert not on_time.catch_up
    # down for three days and a bit (max lateness: one day)
    clock.now = datetime(2026, 6, 4, 9, tzinfo=UTC)
    fired = scheduler.run_once()
    assert len(fired) == 1 and fired[0].catch_up
    assert fired[0].due_at == datetime(2026, 6, 4, 1, tzinfo=UTC)
    assert scheduler.run_once() == []
    execution = c.executions.get(ws, cfg, fired[0].execution_id)
    # the window would start where the last ended (1 June 00:00 BST); max lateness keeps
    # the natural previousDay window, and the rest is shown as a gap
    assert execution.spec.options.date_from == "2026-06-03T00:00:00+01:00"
    assert execution.spec.options.date_to == "2026-06-04T00:00:00+01:00"
    schedule = c.services.configurations.get(ws, cfg).schedules[0]
    assert schedule.gaps == [
        {"from": "2026-05-31T23:00:00+00:00", "to": "2026-06-02T23:00:00+00:00"}
    ]
    ids = [e.id for e in c.executions.list_page(ws, cfg, PageRequest(0, 100)).items]
    assert len(ids) == 2


def test_schedules_keep_their_ids_and_the_limit_is_the_admins(c: Container, tmp_path: Path) -> None:
    ws = c.workspaces.ensure_workspace("t")
    tpl = _template(c, ws, _source(tmp_path, []))
    configs = c.services.configurations
    record = configs.create(
        ws, configuration_values(tpl, "a", schedules=[_daily(), _daily("@hourly", window=None)])
    )
    first, second = record.schedules
    # PATCH with the first by id and one new: the first keeps its id, the second is gone
    changed = configs.update(
        ws, record.id, {"schedules": [{**_daily("0 3 * * *"), "id": first.id}, _daily("@daily")]}
    )
    assert changed.schedules[0].id == first.id and changed.schedules[0].cron == "0 3 * * *"
    assert changed.schedules[1].id not in (first.id, second.id)
    # a PATCH without schedules keeps them
    assert [s.id for s in configs.update(ws, record.id, {"name": "b"}).schedules] == [
        s.id for s in changed.schedules
    ]
    with pytest.raises(Invalid) as exc:
        configs.update(ws, record.id, {"schedules": [{**_daily(), "id": "nope"}]})
    assert exc.value.errors[0].loc == ("body", "schedules", 0, "id")
    with pytest.raises(Invalid) as exc:
        configs.update(ws, record.id, {"schedules": [_daily()] * 6})
    assert exc.value.errors[0].loc == ("body", "schedules")
    assert "the limit (schedulesLimit) is 5" in exc.value.errors[0].msg
    with pytest.raises(Forbidden, match="admin"):
        configs.update(ws, record.id, {"schedules_limit": 6}, caller(ws, EDITOR))
    assert (
        configs.update(ws, record.id, {"schedules_limit": 3}, caller(ws, EDITOR)).schedules_limit
        == 3
    )
    raised = configs.update(
        ws, record.id, {"schedules_limit": 8, "schedules": [_daily()] * 8}, caller(ws, ADMIN)
    )
    assert raised.schedules_limit == 8 and len(raised.schedules) == 8
    with pytest.raises(Invalid) as exc:
        configs.update(ws, record.id, {"schedules": [_daily("0 2 * * * *")]})
    assert exc.value.errors[0].loc == ("body", "schedules", 0, "cron")
    with pytest.raises(Invalid) as exc:
        configs.update(ws, record.id, {"schedules": [_daily(zone="Mars/Base")]})
    assert exc.value.errors[0].loc == ("body", "schedules", 0, "timezone")


def test_pause_stops_firing_not_manual_triggers_and_resume_restarts(
    c: Container, clock: Clock, tmp_path: Path
) -> None:
    ws = c.workspaces.ensure_workspace("t")
    tpl = _template(c, ws, _source(tmp_path, []))
    cfg = _configuration(c, ws, tpl, "p", schedules=[_daily("*/10 * * * *", window=None)])
    scheduler = c.scheduler_service()
    configs = c.services.configurations
    clock.now = datetime(2026, 6, 1, 0, 10, tzinfo=UTC)
    [queued] = scheduler.run_once()
    manual, _ = c.services.executions.trigger(ws, cfg, {})  # held behind the scheduled one
    paused = configs.pause(ws, cfg, cancel_queued=False)
    assert paused.paused
    assert configuration_out(paused, clock.now).sync_status == "paused"
    assert configuration_out(paused, clock.now).schedules[0].next_run_at is None
    clock.now = datetime(2026, 6, 1, 0, 20, tzinfo=UTC)
    assert scheduler.run_once() == []  # paused: the 00:20 slot does not fire
    again, _ = c.services.executions.trigger(ws, cfg, {})  # manual triggers still work
    # cancelQueued cancels the scheduled run only; the manual ones move up
    configs.pause(ws, cfg, cancel_queued=True)
    assert c.executions.get(ws, cfg, queued.execution_id).latest.status is RunStatus.CANCELLED
    assert c.executions.get(ws, cfg, manual.id).latest.status is RunStatus.PENDING
    assert c.executions.get(ws, cfg, again.id).latest.status is RunStatus.ON_HOLD
    clock.now = datetime(2026, 6, 1, 0, 25, tzinfo=UTC)
    resumed = configs.resume(ws, cfg)
    assert not resumed.paused
    out = configuration_out(resumed, clock.now)
    assert out.schedules[0].next_run_at == "2026-06-01T00:30:00Z"
    assert out.schedules[0].next_run_at_local == "2026-06-01T00:30:00+00:00"
    assert scheduler.run_once() == []  # the paused slots are not replayed
    clock.now = datetime(2026, 6, 1, 0, 30, 1, tzinfo=UTC)
    [fired] = scheduler.run_once()
    assert fired.due_at == datetime(2026, 6, 1, 0, 30, tzinfo=UTC) and not fired.catch_up


def test_sync_status_through_a_success_a_failure_and_a_pause(
    c: Container, clock: Clock, tmp_path: Path
) -> None:
    path = _source(tmp_path, [(1, "2026-05-01 00:00:00")])
    ws = c.workspaces.ensure_workspace("t")
    tpl = _template(c, ws, path)
    record = c.services.configurations.create(ws, configuration_values(tpl, "s"))
    configs = c.services.configurations

    def out() -> Any:
        return configuration_out(configs.get(ws, record.id), clock.now)

    assert (out().sync_status, out().last_sync, out().error_text) == ("inactive", None, None)
    configs.submit(ws, record.id)
    assert out().sync_status == "active"
    c.services.executions.trigger(ws, record.id, {})
    assert out().sync_status == "syncing"
    clock.now += timedelta(minutes=1)
    assert c.worker().run_once()
    assert (out().sync_status, out().last_sync, out().error_text) == ("active", clock.now, None)
    succeeded_at = clock.now
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE events RENAME TO gone")
    c.services.executions.trigger(ws, record.id, {})
    clock.now += timedelta(minutes=1)
    assert c.worker().run_once()
    failed = out()
    assert failed.sync_status == "error" and failed.last_sync == succeeded_at
    assert failed.error_text is not None and "events" in failed.error_text
    configs.pause(ws, record.id, cancel_queued=False)
    assert out().sync_status == "paused"
    configs.resume(ws, record.id)
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE gone RENAME TO events")
    c.services.executions.trigger(ws, record.id, {})
    clock.now += timedelta(minutes=1)
    assert c.worker().run_once()
    assert (out().sync_status, out().last_sync, out().error_text) == ("active", clock.now, None)


# ----------------------------------------------------------- exactly once, PostgreSQL
def test_three_concurrent_schedulers_fire_each_of_1000_slots_once(
    tmp_path: Path, pg_db: PgDatabase, clock: Clock
) -> None:
    url = pg_db.sqlalchemy_url
    with pg_db.connect() as admin:  # a throwaway database: commits need not wait for the disk
        admin.execute(f'ALTER DATABASE "{pg_db.name}" SET synchronous_commit = off')  # type: ignore[arg-type]
    upgrade(url)
    containers = [_container(tmp_path / str(i), url, clock) for i in range(3)]
    c = containers[0]
    ws = c.workspaces.ensure_workspace("t")
    tpl = _template(c, ws, _source(tmp_path, []))
    configs = 50
    for i in range(configs):
        _configuration(c, ws, tpl, f"c{i}", schedules=[_daily("* * * * *", window=None)])
    schedulers = [k.scheduler_service() for k in containers]
    fired: list[Fired] = []
    lock = threading.Lock()
    minutes = 1000 // configs
    for minute in range(1, minutes + 1):
        clock.now = START.replace(second=0) + timedelta(minutes=minute)
        barrier = threading.Barrier(3)

        def round_(index: int, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            got = schedulers[index].run_once()
            with lock:
                fired.extend(got)

        threads = [threading.Thread(target=round_, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with c.engine.connect() as conn:
        keys = conn.execute(
            sa.select(executions.c.schedule_id, executions.c.due_at).where(
                executions.c.schedule_id.is_not(None)
            )
        ).all()
    counts = Counter(keys)
    assert len(counts) == 1000 and set(counts.values()) == {1}
    assert len(fired) == 1000  # every slot reported by exactly one scheduler
    assert not any(f.catch_up for f in fired)
    for k in containers:
        k.engine.dispose()
        k.warehouse.engine.dispose()


def test_only_configurations_within_their_dates_fire(
    c: Container, clock: Clock, tmp_path: Path
) -> None:
    ws = c.workspaces.ensure_workspace("t")
    tpl = _template(c, ws, _source(tmp_path, []))
    starts = datetime(2026, 6, 1, 12, tzinfo=UTC)
    cfg = _configuration(
        c,
        ws,
        tpl,
        "dated",
        schedules=[_daily("0 * * * *", window=None)],
        start_date=starts,
        end_date=starts + timedelta(hours=2),
    )
    scheduler = c.scheduler_service()
    clock.now = datetime(2026, 6, 1, 1, 0, 1, tzinfo=UTC)  # before the start date: skipped
    assert scheduler.run_once() == []
    assert c.services.configurations.get(ws, cfg).schedules[0].next_due_at == datetime(
        2026, 6, 1, 2, tzinfo=UTC
    )
    clock.now = starts + timedelta(seconds=1)  # 12:00 is the first slot within the dates
    [fired] = scheduler.run_once()
    assert fired.due_at == starts
    clock.now = starts + timedelta(hours=1, seconds=1)
    assert len(scheduler.run_once()) == 1
    clock.now = starts + timedelta(hours=2, seconds=1)  # the end date has come: no more
    assert scheduler.run_once() == []
    assert c.executions.list_page(ws, cfg, PageRequest(0, 100)).total == 2


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin", "UTC"])
def test_a_date_field_takes_the_day_whose_midnight_is_in_the_window(
    c: Container, clock: Clock, tmp_path: Path, zone: str
) -> None:
    """A date belongs to the window holding its midnight in the schedule's zone: compared with
    its UTC midnight instead, New York's 02:00 previousDay run took the rows dated that very
    day (still open) rather than the day before (before 2026-12-04)."""
    path = tmp_path / "days.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, happened DATE)")
        db.executemany(
            "INSERT INTO events VALUES (?, ?)", [(d, f"2026-06-{d:02d}") for d in (2, 3, 4)]
        )
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, "days", "sqlite", {"path": str(path)}, None)
    fields = [ColumnInfo("id", "int64", False), ColumnInfo("happened", "date", True)]
    tpl = c.templates.create_custom(
        ws, conn.id, "events", TableRef("main", "events"), fields, ["id"], "id", "happened"
    )
    cfg = _configuration(c, ws, tpl.id, "days", schedules=[_daily("0 2 * * *", zone)])
    clock.now = datetime(2026, 6, 4, 12, tzinfo=UTC)  # past 02:00 on the 4th in every zone
    [fired] = c.scheduler_service().run_once()
    options = c.executions.get(ws, cfg, fired.execution_id).spec.options
    assert (options.date_from, options.date_to) == ("2026-06-03", "2026-06-04")
    assert c.worker().run_once()
    assert _records(c, ws, cfg, fired.execution_id) == ["3"]


def test_a_scheduled_window_cancelled_by_pause_is_listed_in_gaps(
    c: Container, clock: Clock, tmp_path: Path
) -> None:
    """``pause?cancelQueued=true`` cancels a queued scheduled run: the next window starts
    after it, so its window is owed and listed in ``gaps`` (it was left out without a trace)."""
    path = _source(tmp_path, [(1, "2026-06-10 12:00:00"), (2, "2026-06-11 12:00:00")])
    ws = c.workspaces.ensure_workspace("t")
    cfg = _configuration(c, ws, _template(c, ws, path), "paused", schedules=[_daily()])
    clock.now = datetime(2026, 6, 11, 1, 0, 1, tzinfo=UTC)
    [fired] = c.scheduler_service().run_once()  # [06-10, 06-11), queued
    c.services.configurations.pause(ws, cfg, cancel_queued=True)
    assert c.executions.get(ws, cfg, fired.execution_id).latest.status is RunStatus.CANCELLED
    c.services.configurations.resume(ws, cfg)
    clock.now = datetime(2026, 6, 12, 1, 0, 1, tzinfo=UTC)
    [later] = c.scheduler_service().run_once()
    assert c.worker().run_once()
    assert _records(c, ws, cfg, later.execution_id) == ["2"]
    assert c.services.configurations.get(ws, cfg).schedules[0].gaps == [
        {"from": "2026-06-10T00:00:00+00:00", "to": "2026-06-11T00:00:00+00:00"}
    ]
