"""An execution's details come from one query (the execution, its runs and their files joined):
every run in order, each with exactly its own files in part order, a run without files between
runs with files, the frozen spec read back whole; another workspace's or configuration's
execution is not found. On SQLite and PostgreSQL metadata."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from egress.db.executions import FileRecord
from egress.db.run_queue import Outcome
from egress.domain.errors import NotFound
from egress.domain.status import RunStatus
from tests.integration.test_repositories import Repos
from tests.support.factories import BARE_SPEC

T0 = datetime(2026, 5, 28, 14, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


@pytest.fixture
def repos(metadata_url: str) -> Repos:
    return Repos(metadata_url)


def _file(part: str, records: int) -> FileRecord:
    name = f"orders_{part}.csv"
    return FileRecord(part, part.upper(), f"k/{name}", name, "text/csv", 10, "0" * 64, records)


def _run_to(repos: Repos, status: RunStatus, files: list[FileRecord], count: int) -> None:
    claimed = repos.queue.claim("w", LEASE, T0)
    assert claimed is not None
    assert repos.queue.finish(claimed, Outcome(status, count, files=files), T0)


def test_details_are_every_run_with_its_own_files(repos: Repos) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    cfg = repos.configuration(ws, "c")
    execution, _ = repos.executions.create(ws, cfg, BARE_SPEC, "api", T0)
    _run_to(repos, RunStatus.COMPLETED, [_file("eu", 2), _file("apac", 1)], 3)
    repos.executions.rerun(ws, cfg, execution.id, T0)
    _run_to(repos, RunStatus.FAILED, [], 0)
    repos.executions.rerun(ws, cfg, execution.id, T0)
    _run_to(repos, RunStatus.COMPLETED, [_file("na", 5)], 5)
    repos.executions.rerun(ws, cfg, execution.id, T0)  # run 4: queued, nothing yet

    details = repos.executions.get(ws, cfg, execution.id)

    assert (details.id, details.workspace_id, details.configuration_id) == (execution.id, ws, cfg)
    assert (details.spec, details.trigger, details.created_at) == (BARE_SPEC, "api", T0)
    assert [(r.run_number, r.status, r.record_count) for r in details.runs] == [
        (1, RunStatus.COMPLETED, 3),
        (2, RunStatus.FAILED, 0),
        (3, RunStatus.COMPLETED, 5),
        (4, RunStatus.PENDING, None),
    ]
    assert [[f.sub_extract_id for f in r.files] for r in details.runs] == [
        ["apac", "eu"],
        [],
        ["na"],
        [],
    ]
    assert details.runs[0].files[1] == _file("eu", 2)
    with pytest.raises(NotFound):
        repos.executions.get(repos.workspaces.ensure_workspace("b"), cfg, execution.id)
    with pytest.raises(NotFound):
        repos.executions.get(ws, repos.configuration(ws, "other"), execution.id)
