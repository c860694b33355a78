"""Two workspaces on one real server, made with ``egress admin`` as an operator would.

    def test_x(tenants: Tenants) -> None:
        with tenants.client(tenants.a.editor) as http:
            assert http.get("/api/v1/connections").status_code == 200

``tenants.a`` and ``tenants.b`` each have ``name``, ``id``, an ``admin`` and an ``editor`` token.
One server per test module; a module that needs server settings overrides ``tenants_env``:

    @pytest.fixture(scope="module")
    def tenants_env() -> dict[str, str]:
        return {"EGRESS_SOURCE_TIMEOUT_S": "2"}

``tenants.sources`` is a folder inside the server's data dir for SQLite files and the like.
When the module ends, the server's log must be clean: no stack trace, no 5xx, no token.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, start_server, stop_server
from tests.e2e.helpers import api, assert_clean_log
from tests.support.identity import create_token, create_workspace


@dataclass(frozen=True)
class Tenant:
    name: str
    id: str
    admin: str
    editor: str


@dataclass(frozen=True)
class Tenants:
    server: Server
    a: Tenant
    b: Tenant

    def client(self, token: str) -> httpx.Client:
        """A client with ``token``; any 5xx answer fails the test at that request."""
        return api(self.server, token)

    @property
    def sources(self) -> Path:
        path = self.server.data_dir / "sources"
        path.mkdir(parents=True, exist_ok=True)
        return path


def make_tenants(server: Server) -> Tenants:
    """Workspaces ``alpha`` and ``beta``, each with an admin and an editor token (via the CLI)."""
    names = ("alpha", "beta")
    with ThreadPoolExecutor(4) as pool:  # each command is a process of its own: start them together
        ids = list(pool.map(lambda n: create_workspace(server, n), names))
        tokens = list(
            pool.map(
                lambda nr: create_token(server, nr[0], nr[1], "--name", f"{nr[0]}-{nr[1]}"),
                [(n, r) for n in names for r in ("admin", "editor")],
            )
        )
    a = Tenant(names[0], ids[0], admin=tokens[0], editor=tokens[1])
    b = Tenant(names[1], ids[1], admin=tokens[2], editor=tokens[3])
    return Tenants(server, a, b)


@pytest.fixture(scope="module")
def tenants_env() -> dict[str, str]:
    """Extra environment for the module's server (override in a module to set settings)."""
    return {}


@pytest.fixture(scope="module")
def tenants(
    tmp_path_factory: pytest.TempPathFactory, tenants_env: dict[str, str]
) -> Iterator[Tenants]:
    server = start_server(tmp_path_factory.mktemp("tenants"), env_extra=tenants_env)
    try:
        made = make_tenants(server)
        yield made
    finally:
        stop_server(server)
    assert_clean_log(server.log(), [made.a.admin, made.a.editor, made.b.admin, made.b.editor])
