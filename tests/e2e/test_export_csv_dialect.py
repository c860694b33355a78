"""``"csvDialect": "postgres"`` on a seed-003 export against a real server (jobs of two objects,
the warehouse a PostgreSQL database): each job's file is exactly what a plain PostgreSQL COPY
of its slice writes, cursors followed to the end, from a template and from a data table; and
the body field refused (422 naming csvDialect) wherever it cannot apply."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from egress.client import Client, EgressError
from tests.conftest import PgDatabase, Server
from tests.e2e.helpers import anonymous, api, problem, running_server, workspace_id
from tests.support.http import sqlite_template, submitted_configuration, template

API = "/api/v1"
TABLE = """CREATE TABLE t (
    id int PRIMARY KEY, f float8, n numeric(8,3), b boolean, ts timestamp, tz timestamptz,
    a int[], s text)"""
ROWS = """INSERT INTO t VALUES
 (1, 0.1, 1.5, true, '2026-05-28 14:00:00.5', '2026-05-28 16:00:00+02', '{1,2}',
  'a, "b"' || chr(10) || 'c'),
 (2, 'NaN', NULL, false, 'infinity', '-infinity', '{}', ''),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pg_factory: Any) -> Iterator[Server]:
    env = {
        "EGRESS_EXPORT_JOB_LIMIT": "2",
        "EGRESS_WAREHOUSE_URL": pg_factory("egress_wh").sqlalchemy_url,
    }
    with running_server(tmp_path_factory.mktemp("export_csv_dialect"), env=env) as s:
        yield s


# A key that is not its written text (a date) among the written fields: the cursor is found by
# a bound query in the COPY's snapshot.
DATED = """CREATE TABLE dated (day date, n int, label text, PRIMARY KEY (day, n));
INSERT INTO dated SELECT date '2026-01-01' + g / 2, g % 2, 'x' || g FROM generate_series(0, 4) g"""


@pytest.fixture(scope="module")
def source(pg_factory: Any) -> PgDatabase:
    db: PgDatabase = pg_factory()
    with db.connect() as conn:
        conn.execute(TABLE)
        conn.execute(ROWS)
        conn.execute(DATED)
    return db


@pytest.fixture(scope="module")
def pg_template(http: httpx.Client, source: PgDatabase) -> str:
    settings = {"host": "127.0.0.1", "port": 5432, "database": source.name, "user": "postgres"}
    body = {"name": "pg", "type": "postgresql", "settings": settings}
    connection = http.post(f"{API}/connections", json=body).json()["id"]
    return str(template(http, connection, "public.t")["id"])


def _done(http: httpx.Client, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body: dict[str, Any] = http.get(f"{API}/request/{request_id}", params={"wait": 5}).json()
        if body["status"] in ("Completed", "Failed"):
            return body
    raise AssertionError(f"{request_id} did not finish")


def _chain(server: Server, path: str, body: dict[str, Any]) -> list[tuple[str, int]]:
    """Each job's file and total, cursors followed from none to the end."""
    files: list[tuple[str, int]] = []
    cursor = None
    with api(server) as http, anonymous(server) as web:
        while True:
            posted = http.post(path, json=body | ({"cursor": cursor} if cursor else {}))
            assert posted.status_code == 200, posted.text
            done = _done(http, posted.json()["requestId"])
            assert done["status"] == "Completed", done
            files.append((web.get(done["result"]["fileUrl"]).text, done["result"]["total"]))
            cursor = done["result"]["nextCursor"]
            if cursor is None:
                return files


def _copy(db: PgDatabase, select: str) -> str:
    """What plain ``COPY (select) TO STDOUT (FORMAT csv, HEADER)`` writes in Egress's session
    settings (UTC, shortest-exact floats)."""
    data = bytearray()
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        cur.execute("SET extra_float_digits = 1")
        with cur.copy(f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:  # type: ignore[arg-type]
            for chunk in copy:
                data += chunk
    return data.decode()


def test_a_templates_jobs_are_plain_copies_of_their_slices(
    server: Server, source: PgDatabase, pg_template: str
) -> None:
    path = f"{API}/idm/{workspace_id(server)}/t-{pg_template}/export"
    files = _chain(server, path, {"format": "csv", "csvDialect": "postgres"})
    assert [n for _, n in files] == [2, 1]
    assert files[0][0] == _copy(source, "SELECT * FROM t WHERE id <= 2 ORDER BY id")
    assert files[1][0] == _copy(source, "SELECT * FROM t WHERE id > 2 ORDER BY id")
    assert files[0][0].splitlines() == [
        "id,f,n,b,ts,tz,a,s",
        '1,0.1,1.500,t,2026-05-28 14:00:00.5,2026-05-28 14:00:00+00,"{1,2}","a, ""b""',
        'c"',
        '2,NaN,,f,infinity,-infinity,{},""',
    ]
    assert files[1][0] == "id,f,n,b,ts,tz,a,s\n3,,,,,,,\n"
    # Without the key among the fields: the same slices, the cursor found beside the COPY.
    files = _chain(server, path, {"format": "csv", "csvDialect": "postgres", "fields": ["b"]})
    assert files == [("b\nt\nf\n", 2), ("b\n\n", 1)]
    # The default rendering is unchanged; "egress" names it.
    default = _chain(server, path, {"format": "csv", "fields": ["id", "b"]})
    named = _chain(server, path, {"format": "csv", "fields": ["id", "b"], "csvDialect": "egress"})
    assert default == named == [('"id","b"\n1,true\n2,false\n', 2), ('"id","b"\n3,\n', 1)]


def test_a_date_key_is_followed_to_the_end(
    server: Server, http: httpx.Client, source: PgDatabase, pg_template: str
) -> None:
    connection = next(
        c["id"] for c in http.get(f"{API}/connections").json()["data"] if c["name"] == "pg"
    )
    dated = template(http, connection, "public.dated")["id"]
    path = f"{API}/idm/{workspace_id(server)}/t-{dated}/export"
    files = _chain(server, path, {"format": "csv", "csvDialect": "postgres"})
    assert [n for _, n in files] == [2, 2, 1]
    assert [f.splitlines()[0] for f, _ in files] == ["day,n,label"] * 3
    rows = [line for f, _ in files for line in f.splitlines()[1:]]
    assert rows == _copy(source, "SELECT * FROM dated ORDER BY day, n").splitlines()[1:]
    assert rows[:2] == ["2026-01-01,0,x0", "2026-01-01,1,x1"]


def test_a_data_table_in_a_postgresql_warehouse_is_a_plain_copy_too(
    server: Server, http: httpx.Client, pg_template: str
) -> None:
    destination = {"type": "dataTable", "dataTable": "loaded", "mode": "upsert"}
    fields = ["id", "f", "n", "b", "s"]  # no infinite timestamps: a data table has none
    cfg = submitted_configuration(
        http, pg_template, "to_dt", destination=destination, fields=fields, format=None
    )
    execution = http.post(f"{API}/extraction-configurations/{cfg}/executions").json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = http.get(f"{API}/extraction-configurations/{cfg}/executions/{execution}").json()
        if found["latestStatus"] in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.1)
    assert found["latestStatus"] == "COMPLETED", found
    path = f"{API}/idm/{workspace_id(server)}/loaded/export"
    files = _chain(server, path, {"format": "csv", "csvDialect": "postgres"})
    assert files == [
        (
            'id,f,n,b,s\n1,0.1,1.500,t,"a, ""b""\nc"\n2,NaN,,f,""\n',
            2,
        ),
        ("id,f,n,b,s\n3,,,,\n", 1),
    ]


def test_csv_dialect_is_refused_where_it_cannot_apply(
    server: Server, http: httpx.Client, pg_template: str, tmp_path: Path
) -> None:
    firm = workspace_id(server)
    path = f"{API}/idm/{firm}/t-{pg_template}/export"
    problem(http.post(path, json={"format": "csv", "csvDialect": "excel"}), 422, "csvDialect")
    refused = problem(http.post(path, json={"csvDialect": "postgres"}), 422, "csvDialect")
    assert "renders CSV; the format is jsonl" in refused["detail"]
    refused = problem(
        http.post(path, json={"format": "parquet", "csvDialect": "postgres"}), 422, "csvDialect"
    )
    assert "the format is parquet" in refused["detail"]
    db = tmp_path / "s.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    lite = sqlite_template(http, db, "lite", "items")
    refused = problem(
        http.post(
            f"{API}/idm/{firm}/t-{lite}/export", json={"format": "csv", "csvDialect": "postgres"}
        ),
        422,
        "csvDialect",
    )
    assert "this template reads a sqlite source" in refused["detail"]
    # A refused request queued nothing: the user has no active job.
    assert http.get(f"{API}/requests", params={"status": "Pending"}).json()["data"] == []


def test_the_sdk_and_the_cli_export_all_in_the_postgres_dialect(
    server: Server, source: PgDatabase, pg_template: str, tmp_path: Path
) -> None:
    firm = workspace_id(server)
    with Client(server.base_url, server.token) as client:
        index = client.export_all(
            f"t-{pg_template}", tmp_path / "sdk", format="csv", csv_dialect="postgres"
        )
        assert index.csv_dialect == "postgres" and index.complete
        with pytest.raises(EgressError, match=r"csvDialect postgres.*use another directory"):
            client.export_all(f"t-{pg_template}", tmp_path / "sdk", format="csv")
    parts = [(tmp_path / "sdk" / job.file).read_text() for job in index.jobs]
    assert parts == [
        _copy(source, "SELECT * FROM t WHERE id <= 2 ORDER BY id"),
        _copy(source, "SELECT * FROM t WHERE id > 2 ORDER BY id"),
    ]

    env = {k: v for k, v in os.environ.items() if not k.startswith("EGRESS_")}
    env.update(
        EGRESS_URL=server.base_url, EGRESS_TOKEN=server.token, PYTHONPATH=os.pathsep.join(sys.path)
    )
    cli = [sys.executable, "-m", "egress.cli.main", "export", f"t-{pg_template}", "--all"]
    cli += ["--firm", firm, "-o", str(tmp_path / "cli"), "--format", "csv"]
    done = subprocess.run(
        [*cli, "--csv-dialect", "postgres"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert [(tmp_path / "cli" / f"part-0000{i}.csv").read_text() for i in (1, 2)] == parts
    refused = subprocess.run(
        [*cli, "--csv-dialect", "excel"], env=env, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode != 0 and "csvDialect" in refused.stderr
