"""Processes that share a metadata database: a worker on a database never migrated exits with
a message instead of logging `no such table` forever; a process whose secret key ring opens none
of the stored connection secrets refuses to start, naming the setting; one that opens only some
starts and logs an error."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from egress.container import Container
from egress.db.migrate import upgrade
from egress.services.preflight import NotReady, check_key_rings
from tests.conftest import make_settings
from tests.support.migrated import migrate

# Generous: the process only reads its settings and the database before deciding.
EXIT_WITHIN_S = 30.0


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text()


def _worker(data_dir: Path, **env: str) -> _Worker:
    log = data_dir.parent / f"worker-{time.monotonic_ns()}.log"
    with log.open("wb") as fh:
        process = subprocess.Popen(
            [sys.executable, "-m", "egress.cli.main", "worker", "--name", "w"],
            env={
                **os.environ,
                "EGRESS_DATA_DIR": str(data_dir),
                "EGRESS_POLL_S": "0.1",
                "EGRESS_LOG_LEVEL": "INFO",
                **env,
            },
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    return _Worker(process, log)


def _exit(worker: _Worker) -> tuple[int, str]:
    try:
        worker.process.wait(timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        worker.process.wait()
        pytest.fail(f"the worker is still running:\n{worker.output()}")
    return worker.process.returncode, worker.output()


def _started(worker: _Worker) -> str:
    """The worker got past its start-up checks and runs; stopped again, its output."""
    deadline = time.monotonic() + EXIT_WITHIN_S
    while "worker w started" not in worker.output():
        assert worker.process.poll() is None, worker.output()
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.1)
    worker.process.terminate()
    worker.process.wait(timeout=EXIT_WITHIN_S)
    return worker.output()


def test_a_worker_on_a_database_never_migrated_exits_saying_so(tmp_path: Path) -> None:
    code, err = _exit(_worker(tmp_path / "data"))
    assert code == 1
    assert (
        "error: the metadata database has never been migrated: run `egress db upgrade` "
        "(or start `egress serve`, which migrates) first"
    ) in err
    assert "no such table" not in err


def _sealed_connections(tmp_path: Path, keys: list[bytes]) -> Path:
    """A migrated data dir with one password connection sealed under each of ``keys``."""
    data_dir = tmp_path / "data"
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    for n, key in enumerate(keys):
        c = Container.build(make_settings(tmp_path, secret_keys=key.decode()))
        ws = c.workspaces.ensure_workspace("t")
        sealed = c.secret_box.seal({"password": "pw"})
        c.connections.create(ws, f"pg{n}", "postgresql", {"host": "db", "user": "u"}, sealed)
        c.engine.dispose()
    return data_dir


def test_a_worker_whose_key_ring_opens_no_secret_refuses_to_start(tmp_path: Path) -> None:
    theirs, mine = Fernet.generate_key(), Fernet.generate_key()
    data_dir = _sealed_connections(tmp_path, [theirs])

    code, err = _exit(_worker(data_dir, EGRESS_SECRET_KEYS=mine.decode()))
    assert code == 1
    assert (
        "error: the secrets of 1 of 1 connections cannot be opened with this process's secret "
        "key ring, from EGRESS_SECRET_KEYS: every process sharing the metadata database needs "
        "the same EGRESS_SECRET_KEYS"
    ) in err

    # No key configured at all: the key generated into this data dir is named instead.
    code, err = _exit(_worker(data_dir))
    assert code == 1 and f"from {data_dir / 'secret.key'} (EGRESS_SECRET_KEYS" in err

    # The same ring as the process that sealed them (here with a newer key first): it starts.
    out = _started(_worker(data_dir, EGRESS_SECRET_KEYS=f"{mine.decode()},{theirs.decode()}"))
    assert "cannot be opened" not in out


def test_a_ring_that_opens_some_secrets_logs_an_error_and_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kept, retired = Fernet.generate_key(), Fernet.generate_key()
    _sealed_connections(tmp_path, [kept, retired, retired])
    c = Container.build(make_settings(tmp_path, secret_keys=kept.decode()))
    with caplog.at_level(logging.ERROR, logger="egress.services.preflight"):
        check_key_rings(c)  # does not raise
    (record,) = caplog.records
    assert record.getMessage().startswith(
        "the secrets of 2 of 3 connections cannot be opened with this process's secret key ring, "
        "from EGRESS_SECRET_KEYS: every process sharing the metadata database needs the same "
        "EGRESS_SECRET_KEYS (connections "
    )
    assert record.getMessage().endswith("; their runs will fail")

    c = Container.build(make_settings(tmp_path, secret_keys=Fernet.generate_key().decode()))
    with pytest.raises(NotReady, match="the secrets of 3 of 3 connections"):
        check_key_rings(c)


def test_tokens_signed_with_a_key_this_process_lacks_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _sealed_connections(tmp_path, [])
    c = Container.build(make_settings(tmp_path))
    ws = c.workspaces.ensure_workspace("t")
    c.workspaces.add_token(ws, "elsewhere", "admin", "k-other", "ab" * 32, c.clock(), None)
    with caplog.at_level(logging.ERROR, logger="egress.services.preflight"):
        check_key_rings(c)
    (record,) = caplog.records
    assert record.getMessage().startswith(
        "API tokens were signed with key id(s) k-other, which EGRESS_SIGNING_KEYS of this "
        "process lacks"
    )


def test_a_worker_logs_one_line_at_start_without_credentials(
    tmp_path: Path, pg_factory: Any
) -> None:
    """Name, slots, metadata database and storage, so an operator sees what it works on; the
    database's user and password stay out of the log."""
    db = pg_factory("egress_wlog")
    url = db.sqlalchemy_url.replace(
        "postgresql+psycopg://postgres@", "postgresql+psycopg://postgres:hunter2@"
    )
    upgrade(url)
    w = _worker(tmp_path / "data", EGRESS_DATABASE_URL=url, EGRESS_WORKER_CONCURRENCY="3")
    deadline = time.monotonic() + EXIT_WITHIN_S
    try:
        while "started" not in w.output():
            assert w.process.poll() is None and time.monotonic() < deadline, w.output()
            time.sleep(0.1)
    finally:
        w.process.terminate()
        w.process.wait(timeout=30)
    [line] = [ln for ln in w.output().splitlines() if "worker w started" in ln]
    host = url.split("@", 1)[1]
    storage = (tmp_path / "data" / "files").as_uri()
    assert line.endswith(
        f"worker w started: 3 slots, metadata database postgresql+psycopg://{host}, "
        f"storage {storage}"
    ), line
    assert "hunter2" not in w.output() and "postgres:" not in line
