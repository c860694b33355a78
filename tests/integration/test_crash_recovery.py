"""Crash recovery with real worker processes on PostgreSQL (the short CI version).

bench/chaos.py runs the long version (50 executions of 200k rows, a kill every few seconds).
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import PgDatabase
from tests.support.chaos import ChaosConfig, run_chaos


def test_killed_and_frozen_workers_lose_nothing_and_publish_nothing_twice(
    pg_factory: object, tmp_path: Path
) -> None:
    meta: PgDatabase = pg_factory("egress_chaos_meta")  # type: ignore[operator]
    source: PgDatabase = pg_factory("egress_chaos_src")  # type: ignore[operator]
    report = run_chaos(
        ChaosConfig(
            metadata_url=meta.sqlalchemy_url,
            source_url=source.url,
            work_dir=tmp_path,
            workers=3,
            executions=6,
            configurations=3,
            rows=200_000,
            kill_interval_s=(0.8, 1.5),
            freeze_every=2,
            lease_s=2.0,
            timeout_s=150,
        )
    )
    assert report.problems == []
    assert report.kills >= 1, "the test must actually kill a worker"
    assert report.freezes >= 1, "the test must actually freeze a worker past its lease"
    assert report.attempts_total > report.executions, "some run must have needed a new attempt"
    assert report.zombie_aborts >= 1, "a frozen worker must wake up and commit nothing"
