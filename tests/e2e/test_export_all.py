"""``export_all`` and ``egress export --all`` against a real server whose job size is small,
so that 250,001 objects take six jobs (the last holding one object): cursors followed job
after job, a ``429`` (another job of the same user active) waited out, an interrupted export
resumed from where it stopped — and every object in the files exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from egress.client import AsyncClient, Client, ExportIndex, ExportProgress
from tests.conftest import Server
from tests.e2e.helpers import running_server, workspace_id

OBJECTS = 250_001
JOB_LIMIT = 50_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"EGRESS_EXPORT_JOB_LIMIT": str(JOB_LIMIT)}
    with running_server(tmp_path_factory.mktemp("export_all"), env=env) as s:
        yield s


@pytest.fixture(scope="module")
def items(server: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The export object of a SQLite table of 250,001 rows: ``t-<template id>``."""
    db = tmp_path_factory.mktemp("src") / "firm.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        conn.executemany(
            "INSERT INTO items VALUES (?, ?)", ((i, f"item {i}") for i in range(1, OBJECTS + 1))
        )
    with Client(server.base_url, server.token) as client:
        connection = client.connections.create("firm", "sqlite", {"path": str(db)})
        [template] = [t for t in client.templates.list(connection).data if t.name == "main.items"]
    return f"t-{template.id}"


class Interrupted(Exception):
    """The script stopped (Ctrl-C, a crash) while a job was running."""


def _ids(directory: Path, files: list[str]) -> list[int]:
    ids = []
    for name in files:
        with (directory / name).open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                assert row["name"] == f"item {row['id']}"
                ids.append(row["id"])
    return ids


def test_export_all_follows_cursors_waits_out_429_and_resumes(
    server: Server, items: str, tmp_path: Path
) -> None:
    firm = workspace_id(server)
    out = tmp_path / "items"
    seen: list[ExportProgress] = []

    def stop_in_job_3(p: ExportProgress) -> None:
        seen.append(p)
        if p.jobs_done == 2 and p.status in ("Pending", "InProgress"):
            raise Interrupted

    with Client(server.base_url, server.token) as client:
        # Another script of the same user starts a job first: the export meets 429 and waits.
        other = client.request("POST", f"/api/v1/idm/{firm}/{items}/export")
        assert other.json()["requestId"]
        with pytest.raises(Interrupted):
            client.export_all(items, to=out, firm=firm, on_progress=stop_in_job_3)
    assert seen[0].status == "RateLimited"
    index = json.loads((out / "index.json").read_text())
    assert [j["total"] for j in index["jobs"]] == [JOB_LIMIT, JOB_LIMIT]
    assert index["jobs"][0]["cursor"] is None
    assert index["jobs"][1]["cursor"] == index["jobs"][0]["nextCursor"]
    assert index["active"]["cursor"] == index["jobs"][1]["nextCursor"]  # job 3, still running
    assert sorted(p.name for p in out.iterdir()) == [
        "index.json",
        "part-00001.jsonl",
        "part-00002.jsonl",
    ]
    first_two = [j["requestId"] for j in index["jobs"]]

    # Resumed from the command line: the job in progress is picked up, then the rest.
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGRESS_")}
    env.update(EGRESS_URL=server.base_url, EGRESS_TOKEN=server.token, COLUMNS="200")
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "egress.cli.main",
            "export",
            items,
            "--all",
            "-o",
            str(out),
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    index = json.loads(done.stdout)
    assert index == json.loads((out / "index.json").read_text())
    assert index["complete"] and index["active"] is None
    assert [j["total"] for j in index["jobs"]] == [JOB_LIMIT] * 5 + [1]  # the last: one object
    assert [j["requestId"] for j in index["jobs"][:2]] == first_two
    assert index["jobs"][-1]["nextCursor"] is None
    assert "6 jobs, complete" in done.stderr  # the progress bar's final line
    files = [j["file"] for j in index["jobs"]]
    assert _ids(out, files) == list(range(1, OBJECTS + 1))  # each object once, in key order
    assert not list(out.glob("*.part"))

    # Complete: run again, nothing more is asked of the server.
    with Client(server.base_url, server.token) as client:
        again = client.export_all(items, to=out, firm=firm)
    assert again.complete and again.total == OBJECTS


def test_async_client_exports_one_job_at_a_time(server: Server, items: str, tmp_path: Path) -> None:
    async def main() -> tuple[list[str], ExportIndex]:
        async with AsyncClient(server.base_url, server.token) as client:
            objects = await client.exports.objects()
            index = await client.exports.export_all(
                items, tmp_path, format="csv", fields=["id"], jobs=1
            )
            return [o.name for o in objects], index

    names, index = asyncio.run(main())
    assert items in names
    assert (index.total, index.complete, len(index.jobs)) == (JOB_LIMIT, False, 1)
    lines = (tmp_path / "part-00001.csv").read_text().splitlines()
    assert lines[:2] == ['"id"', "1"] and len(lines) == JOB_LIMIT + 1
