"""``egress admin`` as a user runs it: a subprocess against a running server's data dir (and
the same done in-process where a test only needs the result)."""

from __future__ import annotations

import subprocess
import sys

from egress.container import Container
from egress.domain.identity import Principal, Subject
from egress.settings import Settings
from tests.conftest import Server


def egress_admin(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``egress admin ARGS`` with the server's environment (same database and keys)."""
    return subprocess.run(
        [sys.executable, "-m", "egress.cli.main", "admin", *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=180,  # a loaded shared machine: imports alone can take 30 s
        check=False,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}: {result.stdout}{result.stderr}"
    return result.stdout


def create_workspace(server: Server, name: str) -> str:
    """The new workspace's id."""
    return _ok(egress_admin(server, "create-workspace", name)).strip()


def create_token(server: Server, workspace: str, role: str, *options: str) -> str:
    """A new token (the last line of the command's output)."""
    args = ("create-token", "--workspace", workspace, "--role", role, *options)
    return _ok(egress_admin(server, *args)).strip().splitlines()[-1]


def caller(workspace_id: str, role: str) -> Principal:
    """A caller with ``role`` for service calls made in-process (what a route would pass)."""
    return Principal(workspace_id, role, Subject("token", f"test-{role}", f"test {role}"))


def other_workspace(server: Server, name: str, role: str) -> tuple[str, str]:
    """(id, token with ``role``) of a new workspace, made in-process on the server's database
    and keys: far quicker than two ``egress admin`` processes."""
    c = Container.build(Settings(data_dir=server.data_dir))
    try:
        identity = c.services.identity
        workspace = identity.create_workspace(name)
        return workspace, identity.create_token(workspace, role, f"{name}-{role}").token
    finally:
        c.engine.dispose()
        c.warehouse.engine.dispose()
