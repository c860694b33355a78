"""The execution details cache (``db/execution_cache.py``) never shows a poll less than a read
would: a write through the API shows on the very next poll, a write by another process (here
another engine, with connections of its own) as soon as its change signal arrives — SQLite's
``data_version`` at once, PostgreSQL's NOTIFY within its delivery — and losing PostgreSQL's
LISTEN connection only turns the cache off until it is back. The cache's age bound is frozen
here (``monotonic`` always 0), so only the change signal can make a change visible."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from egress.api.app import create_app
from egress.container import Container
from egress.db.changes import CHANNEL
from egress.db.execution_cache import DetailsCache
from egress.demo import create_orders_db
from tests.conftest import files_root, make_settings
from tests.e2e.helpers import CONFIGS
from tests.support.http import sqlite_template, submitted_configuration

# Long enough for a loaded machine to deliver a notification; never reached when it works.
DEADLINE_S = 30.0


@dataclass
class Cached:
    http: TestClient
    container: Container  # the API's
    other: Container  # another writer of the same metadata database
    workspace_id: str
    config_id: str
    execution_id: str  # PENDING: no worker runs

    def poll(self) -> str:
        url = f"{CONFIGS}/{self.config_id}/executions/{self.execution_id}"
        answer = self.http.get(url)
        assert answer.status_code == 200
        status: str = answer.json()["latestStatus"]
        return status

    def remembered(self) -> bool:
        ids = (self.workspace_id, self.config_id, self.execution_id)
        return self.container.services.executions.remembered(*ids) is not None


@pytest.fixture
def cached(tmp_path: Path, metadata_url: str) -> Iterator[Cached]:
    container = Container.build(make_settings(tmp_path, metadata_url, revocation_cache_s=60))
    container.details_cache = DetailsCache(monotonic=lambda: 0.0)
    other = Container.build(make_settings(tmp_path, metadata_url))
    identity = container.services.identity
    workspace = identity.create_workspace("w")
    admin = identity.create_token(workspace, "admin", "setup").token
    source = create_orders_db(files_root(tmp_path) / "shop.db", rows=10)
    app = create_app(container, with_worker=False)
    with TestClient(app, headers={"Authorization": f"Bearer {admin}"}) as http:
        tpl = sqlite_template(http, source, "shop", "orders")
        cfg = submitted_configuration(http, tpl, "small")
        execution_id = http.post(f"{CONFIGS}/{cfg}/executions").json()["id"]
        yield Cached(http, container, other, workspace, cfg, execution_id)
    other.engine.dispose()
    container.engine.dispose()


def _poll_until(c: Cached, status: str) -> str:
    deadline = time.monotonic() + DEADLINE_S
    seen = c.poll()
    while seen != status and time.monotonic() < deadline:
        time.sleep(0.01)
        seen = c.poll()
    return seen


def test_a_cancel_through_the_api_shows_on_the_very_next_poll(cached: Cached) -> None:
    c = cached
    assert c.poll() == "PENDING"
    assert c.poll() == "PENDING"
    assert c.remembered()  # the second poll came from memory
    url = f"{CONFIGS}/{c.config_id}/executions/{c.execution_id}/cancel"
    assert c.http.post(url).status_code == 202
    assert c.poll() == "CANCELLED"


def test_another_writers_change_shows_as_soon_as_its_signal_arrives(
    cached: Cached, metadata_url: str
) -> None:
    c = cached
    assert (c.poll(), c.poll()) == ("PENDING", "PENDING")
    assert c.remembered()
    c.other.services.executions.cancel(c.workspace_id, c.config_id, c.execution_id)
    if metadata_url.startswith("sqlite"):
        assert c.poll() == "CANCELLED"  # data_version moved with the other connection's commit
    else:
        assert _poll_until(c, "CANCELLED") == "CANCELLED"
    assert c.poll() == "CANCELLED"
    assert c.remembered()  # and the new answer is what it now serves


# SQLite's check holds no connection to lose: PostgreSQL only.
@pytest.mark.parametrize("metadata_url", ["postgresql"], indirect=True)
def test_a_lost_listen_connection_turns_the_cache_off_until_it_is_back(
    cached: Cached, metadata_url: str
) -> None:
    c = cached
    assert (c.poll(), c.poll()) == ("PENDING", "PENDING")
    assert c.remembered()
    database = c.container.engine.url.database
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as pg:
        ended = pg.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND query = %s",
            (database, f"LISTEN {CHANNEL}"),
        ).fetchall()
        assert ended == [(True,)]
        # Written while nobody listens: no notification will ever tell of it.
        c.other.services.executions.cancel(c.workspace_id, c.config_id, c.execution_id)
    assert _poll_until(c, "CANCELLED") == "CANCELLED"
    deadline = time.monotonic() + DEADLINE_S
    while not c.remembered() and time.monotonic() < deadline:  # listening again
        time.sleep(0.05)
        assert c.poll() == "CANCELLED"
    assert c.remembered()
