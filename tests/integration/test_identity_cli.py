"""``egress admin create-user``, ``create-client`` and ``rotate-signing-key``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from egress.cli.main import app
from egress.container import Container
from egress.settings import Settings
from egress.signing import load_signing_ring

PASSWORD = "a long enough password"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EGRESS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("EGRESS_SIGNING_KEYS", raising=False)
    monkeypatch.delenv("EGRESS_DATABASE_URL", raising=False)
    return tmp_path


def _run(*args: str, stdin: str | None = None) -> list[str]:
    result = CliRunner().invoke(app, ["admin", *args], input=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_create_user_and_client_then_sign_in_and_mint(data_dir: Path) -> None:
    _run("create-workspace", "ops")
    (user_id,) = _run(
        "create-user",
        "Eve@Ops.test",
        "--workspace",
        "ops",
        "--role",
        "editor",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    lines = _run("create-client", "etl", "--workspace", "ops", "--role", "viewer")
    assert lines[0] == "created viewer client 'etl' in 'ops'"
    client_id, secret = lines[1], lines[2]
    assert secret.startswith("egs_")
    c = Container.build(Settings())
    try:
        users = c.services.users
        found = users.check_password("eve@ops.test", PASSWORD)
        assert found is not None and found.id == user_id
        assert users.check_password("eve@ops.test", "wrong password!") is None
        client = users.client(client_id)
        assert client is not None and users.check_client_secret(client, secret)
        assert not users.check_client_secret(client, secret + "x")
    finally:
        c.engine.dispose()
        c.warehouse.engine.dispose()


def test_short_password_is_refused(data_dir: Path) -> None:
    _run("create-workspace", "ops")
    result = CliRunner().invoke(
        app,
        [
            "admin",
            "create-user",
            "a@b.test",
            "--workspace",
            "ops",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        input="short\n",
    )
    assert result.exit_code == 1 and "at least 12 characters" in result.output


def test_rotate_signing_key_puts_a_new_key_first_and_keeps_the_old(data_dir: Path) -> None:
    before = load_signing_ring(Settings()).keys
    (line,) = _run("rotate-signing-key")
    after = load_signing_ring(Settings()).keys
    assert after[1:] == before and after[0].id not in {k.id for k in before}
    assert line.startswith(f"added signing key {after[0].id}")
    assert (data_dir / "signing.key").stat().st_mode & 0o777 == 0o600
