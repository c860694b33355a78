"""CPU per status poll through the ASGI application in this process — no socket, no uvicorn,
no client competing for the cores — beside a bare FastAPI route returning a constant, timed
alternately in the same run. On a loaded machine this ratio holds where requests per second
(bench/polling.py) swing by a factor of 2. Run it on two checkouts to compare them:

    PYTHONPATH=src .venv/bin/python bench/poll_cost.py [--polls 2000] [--rounds 3]
                                                       [--backend sqlite|postgresql]

The poll is `GET` execution details of a completed JSONL extraction of 10 rows, with SQLite
metadata (or, with --backend postgresql, a throwaway database EGRESS_BENCH_DB, default
egress_bench, on 127.0.0.1:5432) and the product's revocation cache (5 s), as one client keeps
polling it. The PostgreSQL server's own CPU is not counted: only this process's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message, Scope

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import files_root, make_settings, wait_for_status
from tests.support.http import sqlite_template, submitted_configuration

from egress.api.app import create_app
from egress.container import Container
from egress.db.migrate import upgrade
from egress.demo import create_orders_db
from egress.settings import DEFAULT_REVOCATION_CACHE_S

CONFIGS = "/api/v1/extraction-configurations"
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _metadata_url(backend: str, folder: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'meta.db'}"
    name = os.environ.get("EGRESS_BENCH_DB", "egress_bench")
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _scope(path: str, token: str | None) -> Scope:
    headers = [(b"host", b"bench"), (b"accept", b"*/*")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


async def _cpu_ms(app: ASGIApp, path: str, token: str | None, polls: int) -> float:
    """CPU milliseconds (every thread of this process) per request, after one to warm up."""
    statuses: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(_scope(path, token), receive, send)
    start = time.process_time()
    for _ in range(polls):
        await app(_scope(path, token), receive, send)
    spent = time.process_time() - start
    if set(statuses) != {200}:
        raise RuntimeError(f"unexpected statuses: {sorted(set(statuses))}")
    return spent * 1000 / polls


def _bare() -> FastAPI:
    app = FastAPI()

    @app.get("/constant")
    def constant() -> dict[str, str]:
        return {"status": "COMPLETED"}

    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--polls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="egress-poll-cost-") as tmp:
        folder = Path(tmp)
        settings = make_settings(
            folder,
            _metadata_url(args.backend, folder),
            revocation_cache_s=DEFAULT_REVOCATION_CACHE_S,
        )
        upgrade(settings.resolved_database_url)
        container = Container.build(settings)
        identity = container.services.identity
        workspace = identity.create_workspace("w")
        token = identity.create_token(workspace, "viewer", "poller").token
        admin = identity.create_token(workspace, "admin", "setup").token
        source = create_orders_db(files_root(folder) / "shop.db", rows=10)
        app = create_app(container, with_worker=True)
        with TestClient(app, headers={"Authorization": f"Bearer {admin}"}) as http:
            tpl = sqlite_template(http, source, "shop", "orders")
            cfg = submitted_configuration(http, tpl, "small", format="jsonl")
            eid = http.post(f"{CONFIGS}/{cfg}/executions").json()["id"]
            wait_for_status(http, cfg, eid, {"COMPLETED"})
        path = f"{CONFIGS}/{cfg}/executions/{eid}"
        container.cache_details()  # as the lifespan of `egress serve` does (it ended above)
        bare = _bare()
        ratios = []
        print("bare ms/req  poll ms/req  poll / bare")
        for _ in range(args.rounds):
            b = asyncio.run(_cpu_ms(bare, "/constant", None, args.polls))
            p = asyncio.run(_cpu_ms(app, path, token, args.polls))
            ratios.append(p / b)
            print(f"{b:11.3f}  {p:11.3f}  {p / b:11.2f}", flush=True)
        print(f"median poll / bare: {statistics.median(ratios):.2f}")
        container.details_cache.detach()
        container.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
