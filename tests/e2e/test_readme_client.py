"""The README's "Command line" session and "Python SDK" script, run verbatim as a newcomer
would (``bash -e``, ids captured as the README shows) against a real server, so the two
sections cannot drift from the product."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Server
from tests.support.newcomer import newcomer_env

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"<!-- readme-test: (\S+)(?: (\S+))? -->\n```\w+\n(.*?)```", re.DOTALL)


def _blocks() -> dict[str, tuple[str | None, str]]:
    return {kind: (arg, body) for kind, arg, body in BLOCK.findall(README.read_text())}


@pytest.fixture(scope="module")
def shell(server: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """A newcomer's shell: `egress` and `python` on PATH, the server of "Using the API"
    (its port and token in EGRESS_PORT / EGRESS_BOOTSTRAP_TOKEN), a fresh config dir, and
    the demo database where `make demo` puts it."""
    home = tmp_path_factory.mktemp("newcomer")
    env = newcomer_env(
        home,
        home / "bin",
        EGRESS_PORT=server.base_url.rsplit(":", 1)[1],
        EGRESS_BOOTSTRAP_TOKEN=server.token,
    )
    return env, home


def _bash(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done


def _eu_orders(db: Path, where: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [str(i) for (i,) in conn.execute(f"SELECT id FROM orders WHERE {where} ORDER BY id")]


def _ids(path: Path) -> list[str]:
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    return [row["id"] for row in rows]


def test_the_command_line_session_then_the_sdk_script(shell: tuple[dict[str, str], Path]) -> None:
    env, home = shell
    blocks = _blocks()
    db = home / "egress-data" / "sources" / "demo" / "shop.db"

    session = _bash(blocks["cli"][1], env, home)
    assert "exit status 3" in session.stdout and "not found" in session.stderr
    assert re.search(r"COMPLETED .* [\d,]+ records .* records/s", session.stderr)
    eu = _eu_orders(db, "region = 'EU'")
    saved = sorted((home / "out").iterdir())
    assert len(saved) == 2 and saved[0].name.startswith("eu_orders_")
    assert saved[1].name == "first.csv"
    for path in saved:
        assert _ids(path) == eu, path

    name, script = blocks["sdk-script"]
    assert name is not None
    (home / name).write_text(script)
    run = _bash(blocks["sdk-run"][1], env, home)
    big = _eu_orders(db, "region = 'EU' AND amount > 500")
    [count, path] = re.findall(r"^(\d+) records in (\S+)$", run.stdout, re.MULTILINE)[0]
    assert int(count) == len(big) and _ids(home / path) == big
    assert re.search(r"^sha256 [0-9a-f]{64} verified$", run.stdout, re.MULTILINE)
    assert "COMPLETED:" in run.stderr
