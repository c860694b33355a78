"""Fixtures every end-to-end module shares: a real server per module, whose log is checked on
the way out (see ``helpers.running_server``), and a client of it that fails the test on any
5xx. A module that needs another server (secrets, ``--no-worker``, S3 storage) defines its own
``server`` fixture; ``http`` then talks to that one."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Server
from tests.e2e.helpers import api, running_server


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    with running_server(tmp_path_factory.mktemp(name)) as s:
        yield s


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with api(server) as client:
        yield client
