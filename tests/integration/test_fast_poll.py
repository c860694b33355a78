"""The status poll answered ahead of FastAPI's routing (``api/native/poll.FastPoll``) is the
route's own answer: same status, headers and body, on SQLite (read in the event loop) and
PostgreSQL (read in a thread). Whatever it does not answer itself — a caller not yet
remembered, no or another scheme of credential, an unknown id, another workspace's execution,
a request with a body or a query string (``?wait=``) — the route answers, with its usual status
and problem JSON."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from itertools import count
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from egress.api.app import create_app
from egress.api.native.poll import FastPoll
from egress.container import Container
from egress.db.executions import FileRecord
from egress.db.run_queue import Outcome
from egress.demo import create_orders_db
from egress.domain.status import RunStatus
from tests.conftest import files_root, make_settings
from tests.e2e.helpers import CONFIGS, problem, unsigned
from tests.support.http import sqlite_template, submitted_configuration


@dataclass
class Polled:
    http: TestClient
    config_id: str
    completed: str  # an execution whose run wrote a file
    pending: str  # one whose run waits for a worker
    viewer: str  # tokens
    outsider: str  # another workspace's viewer
    answered: list[bool]  # one entry per poll FastPoll saw: did it answer it itself?
    new_viewer: Callable[[], str]  # a token the server has not seen yet


@pytest.fixture
def polled(tmp_path: Path, metadata_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Polled]:
    container = Container.build(make_settings(tmp_path, metadata_url, revocation_cache_s=60))
    identity = container.services.identity
    workspace = identity.create_workspace("w")
    admin = identity.create_token(workspace, "admin", "setup").token
    viewer = identity.create_token(workspace, "viewer", "poller").token
    outsider = identity.create_token(identity.create_workspace("x"), "viewer", "other").token
    source = create_orders_db(files_root(tmp_path) / "shop.db", rows=10)
    answered: list[bool] = []
    answer = FastPoll._answer

    async def spy(self: FastPoll, request: Request, **ids: str) -> bytes | None:
        body = await answer(self, request, **ids)
        answered.append(body is not None)
        return body

    monkeypatch.setattr(FastPoll, "_answer", spy)
    app = create_app(container, with_worker=False)
    with TestClient(app, headers={"Authorization": f"Bearer {admin}"}) as http:
        tpl = sqlite_template(http, source, "shop", "orders")
        cfg = submitted_configuration(http, tpl, "small")
        completed = http.post(f"{CONFIGS}/{cfg}/executions").json()["id"]
        claimed = container.run_queue.claim("w", timedelta(seconds=30), container.clock())
        assert claimed is not None
        csv = FileRecord("", "", "k/orders.csv", "orders.csv", "text/csv", 10, "0" * 64, 10)
        outcome = Outcome(RunStatus.COMPLETED, 10, files=[csv])
        assert container.run_queue.finish(claimed, outcome, container.clock())
        pending = http.post(f"{CONFIGS}/{cfg}/executions").json()["id"]
        answered.clear()
        tokens = count()

        def new_viewer() -> str:
            return identity.create_token(workspace, "viewer", f"v{next(tokens)}").token

        yield Polled(http, cfg, completed, pending, viewer, outsider, answered, new_viewer)
    container.engine.dispose()


def test_a_remembered_callers_poll_is_the_routes_answer(polled: Polled) -> None:
    p = polled
    for execution_id in (p.completed, p.pending):
        url = f"{CONFIGS}/{p.config_id}/executions/{execution_id}"
        headers = {"Authorization": f"Bearer {p.new_viewer()}"}
        by_route, ahead = p.http.get(url, headers=headers), p.http.get(url, headers=headers)
        assert (by_route.status_code, ahead.status_code) == (200, 200)
        assert by_route.headers.keys() == ahead.headers.keys()
        assert by_route.headers["content-type"] == ahead.headers["content-type"]
        # Each answer signs its file links anew (the expiry moves on); all else is equal.
        assert unsigned(ahead.json()) == unsigned(by_route.json())
    assert p.answered == [False, True, False, True]
    run = ahead.json()["runs"][0]
    assert (ahead.json()["latestStatus"], run["file"]) == ("PENDING", None)
    completed = by_route = p.http.get(
        f"{CONFIGS}/{p.config_id}/executions/{p.completed}",
        headers={"Authorization": f"bearer {p.viewer}"},  # the scheme in any case
    )
    assert p.answered[-1] is False  # the first time: not yet remembered
    completed = p.http.get(
        f"{CONFIGS}/{p.config_id}/executions/{p.completed}",
        headers={"Authorization": f"bearer {p.viewer}"},
    )
    assert p.answered[-1] is True
    assert completed.json()["latestStatus"] == "COMPLETED"
    assert completed.json()["runs"][0]["file"]["signedUrl"]
    assert unsigned(completed.json()) == unsigned(by_route.json())


def test_what_it_does_not_answer_the_route_answers(polled: Polled) -> None:
    p = polled
    url = f"{CONFIGS}/{p.config_id}/executions"
    viewer = {"Authorization": f"Bearer {p.viewer}"}
    assert p.http.get(f"{url}/{p.completed}", headers=viewer).status_code == 200  # remembered
    p.answered.clear()
    problem(p.http.get(f"{url}/no-such-id", headers=viewer), 404)
    problem(p.http.get(f"{CONFIGS}/no-such-cfg/executions/{p.completed}", headers=viewer), 404)
    outsider = {"Authorization": f"Bearer {p.outsider}"}
    p.http.get(f"{url}/{p.completed}", headers=outsider)  # the outsider, remembered
    problem(p.http.get(f"{url}/{p.completed}", headers=outsider), 404)
    problem(p.http.get(f"{url}/{p.completed}", headers={"Authorization": "Bearer wrong"}), 401)
    basic = {"Authorization": "Basic dXNlcjpwdw=="}
    problem(p.http.get(f"{url}/{p.completed}", headers=basic), 401)
    with_body = p.http.request(
        "GET",
        f"{url}/{p.completed}",
        headers={**viewer, "Content-Type": "application/json"},
        content=b'{"a": "\\u0000"}',
    )
    problem(with_body, 422)
    # ``?wait=`` is the route's to check and to hold (the long poll), a remembered caller's too.
    problem(p.http.get(f"{url}/{p.completed}", params={"wait": "soon"}, headers=viewer), 422)
    held = p.http.get(f"{url}/{p.pending}", params={"wait": 0.2}, headers=viewer)
    assert (held.status_code, held.json()["latestStatus"]) == (200, "PENDING")
    assert p.answered == [False] * 9
