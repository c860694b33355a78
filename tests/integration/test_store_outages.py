"""A store unreachable while an attempt ends: nothing the attempt published or wrote stays in
the bucket for good, the attempt still records its outcome, and an upload the store cut off is
tried again. Real moto S3 behind a TCP switch (off: new connections refused, open ones cut),
real SQLite metadata and source, the real runner, worker and reaper; the clock is injected."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from egress.container import Container
from egress.db.leftovers import FIRST_PAUSE
from egress.domain.status import RunStatus
from egress.engine.control import RunControl
from egress.engine.faults import failure_message, is_transient
from egress.storage import MIN_MULTIPART_BYTES, ObjectHeaders, Storage
from tests.conftest import make_settings
from tests.integration.test_zombie_publish import Clock, queued_execution
from tests.support.migrated import migrate
from tests.support.s3 import S3Server
from tests.support.tcp_switch import TcpSwitch

PREFIX = "exports"


@pytest.fixture
def switch(s3_server: S3Server) -> Iterator[TcpSwitch]:
    switch = TcpSwitch(urlparse(s3_server.endpoint).port or 80)
    yield switch
    switch.off()


@pytest.fixture
def bucket(
    s3_server: S3Server, switch: TcpSwitch, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh bucket that Egress reaches through the switch (the test looks at it directly)."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{switch.port}")
    yield s3_server.new_bucket()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def c(tmp_path: Path, bucket: str, clock: Clock) -> Iterator[Container]:
    settings = make_settings(tmp_path, storage_url=f"s3://{bucket}/{PREFIX}")
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings, clock=clock)
    yield container
    container.engine.dispose()
    container.warehouse.engine.dispose()


class Killed(BaseException):
    """The worker process dies (kill -9): nothing of the attempt runs after this."""


def _keys(s3_server: S3Server, bucket: str) -> list[str]:
    return s3_server.keys(bucket)


def _assert_only_attempt_2s_files(
    c: Container, execution: tuple[str, str, str], s3_server: S3Server, bucket: str
) -> None:
    """The run completed at its second attempt, and the bucket holds its files and nothing
    else."""
    run = c.executions.get(*execution).latest
    assert (run.status, run.attempt, run.record_count) == (RunStatus.COMPLETED, 2, 100)
    assert run.manifest_key is not None
    assert _keys(s3_server, bucket) == sorted(
        f"{PREFIX}/{key}" for key in [*(f.storage_key for f in run.files), run.manifest_key]
    )


def test_a_dead_attempts_published_files_are_deleted_once_the_store_is_back(
    c: Container,
    clock: Clock,
    tmp_path: Path,
    s3_server: S3Server,
    bucket: str,
    switch: TcpSwitch,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws, cfg, execution_id = queued_execution(c, tmp_path, split_by="part")
    zombie = c.run_queue.claim("w1", timedelta(seconds=c.settings.lease_s), clock())
    assert zombie is not None

    def killed_before_recording(*_: Any) -> bool:
        raise Killed

    # It publishes its two parts and manifest, then dies before recording them.
    monkeypatch.setattr(c.run_queue, "finish", killed_before_recording)
    with pytest.raises(Killed):
        c.runner().execute(zombie, RunControl())
    monkeypatch.undo()
    left = _keys(s3_server, bucket)
    assert {k.rsplit("/", 1)[-1] for k in left} == {
        f"cfg_a_{execution_id}_v1.csv",
        f"cfg_b_{execution_id}_v1.csv",
        f"cfg_{execution_id}_v1.csv.manifest.json",
    }
    # The store is down when the reaper finds the dead attempt: the run goes back to the queue
    # at once, and its files stay where they are, for now.
    switch.off()
    clock.now += timedelta(seconds=c.settings.lease_s + 1)
    worker = c.worker("w2")
    assert worker.reap_once().requeued == 1
    assert _keys(s3_server, bucket) == left
    switch.on()
    assert worker.reap_once().requeued == 0
    assert _keys(s3_server, bucket) == left  # its next try is not due yet
    clock.now += FIRST_PAUSE
    worker.reap_once()
    assert _keys(s3_server, bucket) == []
    # The second attempt publishes the only set of files in the bucket.
    assert worker.run_once()
    _assert_only_attempt_2s_files(c, (ws, cfg, execution_id), s3_server, bucket)


def test_a_store_down_while_publishing_retries_the_run_and_later_deletes_its_temporary_files(
    c: Container,
    clock: Clock,
    tmp_path: Path,
    s3_server: S3Server,
    bucket: str,
    switch: TcpSwitch,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws, cfg, execution_id = queued_execution(c, tmp_path)
    publish = c.storage.publish

    def store_down_then_publish(src: str, dst: str) -> None:
        switch.off()
        publish(src, dst)

    monkeypatch.setattr(c.storage, "publish", store_down_then_publish)
    worker = c.worker()
    assert worker.run_once()
    monkeypatch.undo()
    # The attempt recorded its outcome despite the store: a transient failure, tried again.
    run = c.executions.get(ws, cfg, execution_id).latest
    assert (run.status, run.attempt) == (RunStatus.PENDING, 2)
    # The store's own words, without the debug dump obstore appends to them.
    assert run.error_message is not None
    assert run.error_message.startswith("storage error: Generic S3 error: ")
    assert "error sending request" in run.error_message and "Debug" not in run.error_message
    staged = _keys(s3_server, bucket)
    assert staged and all(f"{PREFIX}/" in k and "/.tmp/" in k for k in staged)
    switch.on()
    clock.now += timedelta(hours=1)  # past the run's backoff and the leftovers' pause
    worker.reap_once()
    assert _keys(s3_server, bucket) == []
    # The second attempt publishes the only set of files in the bucket.
    assert worker.run_once()
    _assert_only_attempt_2s_files(c, (ws, cfg, execution_id), s3_server, bucket)


def test_an_upload_the_store_cut_off_is_a_transient_failure(bucket: str, switch: TcpSwitch) -> None:
    storage = Storage(f"s3://{bucket}/{PREFIX}")
    upload = storage.open_writer(
        "cut.bin", MIN_MULTIPART_BYTES, ObjectHeaders("application/octet-stream", "cut.bin")
    )
    block = b"x" * (MIN_MULTIPART_BYTES + 1)
    upload.write(block)  # the multipart upload has begun
    switch.off()
    with pytest.raises(Exception) as raised:
        upload.write(block)
        upload.write(block)
        upload.close()
    assert is_transient(raised.value), repr(raised.value)
    assert failure_message(raised.value).startswith("storage error: ")
