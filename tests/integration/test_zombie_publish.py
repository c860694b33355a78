"""A zombie attempt (frozen past its lease while publishing) must never remove the files of the
attempt that replaced it, which may publish under the very keys the reaper freed. Real SQLite
metadata, real files, the real runner and reaper; the freeze is played by running the reaper
and the next attempt at the moment the first one would have frozen."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from egress.container import Container
from egress.db.run_records import ClaimedRun, Outcome
from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.identity import ADMIN
from egress.domain.naming import MANIFEST_SUFFIX
from egress.domain.status import RunStatus
from egress.engine.control import LeaseLost, RunControl
from egress.storage import TMP_PREFIX, ObjectHeaders, Storage
from tests.conftest import make_settings
from tests.support.factories import configuration_values
from tests.support.identity import caller
from tests.support.migrated import migrate

T0 = datetime(2026, 6, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def c(tmp_path: Path, clock: Clock) -> Iterator[Container]:
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings, clock=clock)
    yield container
    container.engine.dispose()
    container.warehouse.engine.dispose()


def queued_execution(c: Container, tmp_path: Path, **values: Any) -> tuple[str, str, str]:
    path = tmp_path / "src.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, part TEXT)")
        db.executemany("INSERT INTO t VALUES (?, ?)", [(i, "ab"[i % 2]) for i in range(100)])
    ws = c.workspaces.ensure_workspace("t")
    conn = c.connections.create(ws, "src", "sqlite", {"path": str(path)}, None)
    fields = [ColumnInfo("id", "int64", False), ColumnInfo("part", "string", False)]
    tpl = c.templates.create_custom(
        ws, conn.id, "t", TableRef("main", "t"), fields, ["id"], None, None
    )
    # Names every attempt of a run renders alike (the default's start time differs).
    pattern = "{configurationName}_{executionId}_v{run}.{ext}"
    cfg = c.services.configurations.create(
        ws,
        configuration_values(tpl.id, "cfg", file_name_pattern=pattern, **values),
        caller(ws, ADMIN),
    )
    c.services.configurations.submit(ws, cfg.id)
    execution, _ = c.services.executions.trigger(ws, cfg.id, {})
    return ws, cfg.id, execution.id


def _replace_zombie(c: Container, clock: Clock) -> None:
    """The zombie's lease runs out: the reaper requeues its run and discards what it
    published; attempt 2 runs to the end."""
    clock.now += timedelta(seconds=c.settings.lease_s + 1)
    worker = c.worker("w2")
    assert worker.reap_once().requeued == 1
    assert worker.run_once()


class FrozenStorage:
    """The zombie's storage: its worker freezes just before moving file ``at`` (0: the first)
    into place."""

    def __init__(self, real: Storage, at: int, freeze: Callable[[], None]) -> None:
        self._real, self._at, self._freeze, self._moves = real, at, freeze, 0

    def publish(self, src: str, dst: str) -> None:
        if self._moves == self._at:
            self._freeze()
        self._moves += 1
        self._real.publish(src, dst)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _zombie(c: Container, clock: Clock) -> ClaimedRun:
    claimed = c.run_queue.claim("w1", timedelta(seconds=c.settings.lease_s), clock())
    assert claimed is not None
    return claimed


def _completed_rows(c: Container, ws: str, cfg: str, execution_id: str) -> int:
    """The records in the files of the execution's run, which attempt 2 completed."""
    run = c.executions.get(ws, cfg, execution_id).latest
    assert run.status is RunStatus.COMPLETED and run.attempt == 2
    texts = [b"".join(c.storage.stream(f.storage_key)) for f in run.files]
    return sum(text.count(b"\n") - 1 for text in texts)  # each has a header


def test_a_zombie_that_loses_its_lease_after_publishing_keeps_the_next_attempts_file(
    c: Container, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, cfg, execution_id = queued_execution(c, tmp_path)
    zombie = _zombie(c, clock)
    runner = c.runner()
    queue = c.run_queue
    finish = queue.finish

    def frozen_before_recording(claimed: ClaimedRun, outcome: Outcome, now: datetime) -> bool:
        if claimed.lease_token == zombie.lease_token:
            _replace_zombie(c, clock)  # it wakes up here, its files published
        return finish(claimed, outcome, now)

    monkeypatch.setattr(queue, "finish", frozen_before_recording)
    with pytest.raises(LeaseLost):
        runner.execute(zombie, RunControl())
    monkeypatch.undo()
    assert _completed_rows(c, ws, cfg, execution_id) == 100


def test_a_zombie_that_freezes_mid_publish_keeps_the_next_attempts_file(
    c: Container, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, cfg, execution_id = queued_execution(c, tmp_path, split_by="part")
    zombie = _zombie(c, clock)
    runner = c.runner()
    # It moved its first part into place, then froze before the second.
    monkeypatch.setattr(
        runner, "_storage", FrozenStorage(c.storage, 1, lambda: _replace_zombie(c, clock))
    )
    with pytest.raises(Exception):  # noqa: B017 - whatever its stale move ran into
        runner.execute(zombie, RunControl())
    assert _completed_rows(c, ws, cfg, execution_id) == 100


class FrozenAtManifest:
    """The zombie's storage: its worker freezes just before its manifest reaches its final key
    (however it gets there), ``freeze`` playing what happens meanwhile."""

    def __init__(self, real: Storage, freeze: Callable[[], None]) -> None:
        self._real, self._freeze = real, freeze

    def _arriving(self, key: str) -> None:
        if key.endswith(MANIFEST_SUFFIX) and f"/{TMP_PREFIX}/" not in f"/{key}":
            self._freeze()

    def put(self, key: str, data: bytes, headers: ObjectHeaders) -> None:
        self._arriving(key)
        self._real.put(key, data, headers)

    def publish(self, src: str, dst: str) -> None:
        self._arriving(dst)
        self._real.publish(src, dst)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_a_zombie_frozen_before_its_manifest_never_replaces_the_next_attempts_manifest(
    c: Container, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, cfg, execution_id = queued_execution(c, tmp_path)
    zombie = _zombie(c, clock)
    runner = c.runner()

    def meanwhile() -> None:
        # A row arrives, then the zombie's lease runs out: the reaper deletes the file it had
        # moved into place, so attempt 2 publishes 101 rows under the very same names.
        with sqlite3.connect(tmp_path / "src.db") as db:
            db.execute("INSERT INTO t VALUES (100, 'a')")
        _replace_zombie(c, clock)

    monkeypatch.setattr(runner, "_storage", FrozenAtManifest(c.storage, meanwhile))
    with pytest.raises(Exception):  # noqa: B017 - whatever its stale manifest ran into
        runner.execute(zombie, RunControl())
    assert _completed_rows(c, ws, cfg, execution_id) == 101
    run = c.executions.get(ws, cfg, execution_id).latest
    assert run.manifest_key is not None
    manifest = json.loads(b"".join(c.storage.stream(run.manifest_key)))
    (file,) = run.files
    assert [(f["key"], f["recordCount"], f["sha256"]) for f in manifest["files"]] == [
        (file.storage_key, 101, file.sha256)
    ]
