"""``egress admin rotate-key`` on both metadata backends: secrets sealed under the old key stay
readable while the ring holds both keys (before and during the rotation), the command re-seals
each under the new first key and says how many, a second run finds nothing to do, and then a
process whose ring holds only the new key reads every connection."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from egress.container import Container
from egress.domain.paging import PageRequest
from tests.conftest import make_settings

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
Build = Callable[[str], Container]


@pytest.fixture
def build(tmp_path: Path, metadata_url: str) -> Iterator[Build]:
    made: list[Container] = []

    def make(keys: str) -> Container:
        c = Container.build(make_settings(tmp_path, metadata_url, secret_keys=keys))
        made.append(c)
        return c

    yield make
    for c in made:
        c.engine.dispose()


def _secrets(c: Container) -> dict[str, dict[str, str]]:
    """Every connection's secrets as this process opens them, by name."""
    opened = {}
    for ws in ("a", "b"):
        wid = c.workspaces.workspace_id(ws)
        for record in c.connections.list_page(wid, PageRequest(limit=1000)).items:
            opened[record.name] = c.secret_box.open(record.sealed_secrets)
    return opened


def test_rotation_reseals_everything_without_a_moment_unreadable(
    build: Build, tmp_path: Path, metadata_url: str
) -> None:
    old = build(OLD)
    expected = {}
    for ws in ("a", "b"):
        wid = old.workspaces.ensure_workspace(ws)
        for n in range(3):
            name = f"{ws}{n}"
            expected[name] = {"password": f"pw-{name}"}
            old.connections.create(
                wid, name, "postgresql", {"host": "db"}, old.secret_box.seal(expected[name])
            )
        old.connections.create(wid, f"{ws}-none", "sqlite", {"path": "/x.db"}, None)
        expected[f"{ws}-none"] = {}

    # Every process gets the new key first, the old one still in the ring: all readable.
    both = build(f"{NEW},{OLD}")
    assert _secrets(both) == expected
    # A change made now is sealed under the new key; the ring reads old and new alike.
    wid = both.workspaces.workspace_id("a")
    a1 = next(r for r in both.connections.list_page(wid, PageRequest()).items if r.name == "a1")
    expected["a1"] = {"password": "changed"}
    both.connections.update(wid, a1.id, sealed_secrets=both.secret_box.seal(expected["a1"]))
    assert _secrets(both) == expected

    # The rotation, as the operator runs it: another process, the same ring.
    env = {
        **os.environ,
        "EGRESS_DATA_DIR": str(tmp_path / "data"),
        "EGRESS_DATABASE_URL": metadata_url,
        "EGRESS_SECRET_KEYS": f"{NEW},{OLD}",
    }
    run = subprocess.run(
        [sys.executable, "-m", "egress.cli.main", "admin", "rotate-key"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == (
        "re-sealed 5, already current 1, changed meanwhile 0, unreadable 0"
    )
    again = both.services.key_rotation.rotate()
    assert (again.resealed, again.current, again.unreadable) == (0, 6, 0)

    # The old key can go now: a process with the new key alone reads every connection...
    assert _secrets(build(NEW)) == expected
    # ...and the old key alone opens none of them any more.
    with pytest.raises(RuntimeError, match="cannot be decrypted"):
        _secrets(build(OLD))
