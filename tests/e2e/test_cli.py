"""The command line as a user drives it: ``egress`` as a subprocess against a real server, JSON
outputs parsed and checked, exit codes (0 ok, 1 failed, 2 usage, 3 not found/unauthorized), the
final line of ``run --wait``'s progress bar, and Ctrl-C through a pseudo-terminal cancelling the
run after asking."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import select
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress.client import Client
from egress.demo import create_orders_db
from tests.conftest import PgDatabase, Server

ROWS = 2000
PG_ROWS = 30_000_000  # the planner knows generate_series' row count
PG_SLOW_QUERY = f"SELECT g AS id, md5(g::text) AS h FROM generate_series(1, {PG_ROWS}) AS g"


class Cli:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "egress.cli.main", *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGRESS_")}
    env.update(
        XDG_CONFIG_HOME=str(home / "config"), COLUMNS="200", PYTHONPATH=os.pathsep.join(sys.path)
    )
    return Cli(env, home)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_orders_db(tmp_path_factory.mktemp("shop") / "shop.db", rows=ROWS)


@pytest.fixture(scope="module")
def logged_in(cli: Cli, server: Server) -> Iterator[Cli]:
    cli("connections", "list", code=2)  # no server configured yet: a usage error
    assert "egress login" in cli("connections", "list", code=2).stderr
    cli("login", "--url", server.base_url, "--token", "wrong", code=3)
    cli("login", "--url", server.base_url, "--token", server.token)
    profiles = Path(cli.env["XDG_CONFIG_HOME"]) / "egress" / "profiles.json"
    assert stat.S_IMODE(profiles.stat().st_mode) == 0o600
    assert json.loads(profiles.read_text())["default"]["url"] == server.base_url
    yield cli


def test_a_cli_session(logged_in: Cli, shop: Path, tmp_path: Path) -> None:
    cli = logged_in
    conn = cli.json("connections", "add", "shop", "--type", "sqlite", "-s", f"path={shop}")
    assert conn["name"] == "shop" and conn["settings"] == {"path": str(shop)}
    assert [c["id"] for c in cli.json("connections", "list")] == [conn["id"]]
    # (test and browse: run by the README's session, tests/e2e/test_readme_client.py)
    templates = cli.json("templates", "list", "--connection", conn["id"])
    [tpl] = [t for t in templates if t["name"] == "main.orders"]

    spec = tmp_path / "eu.yaml"
    spec.write_text(
        f"name: eu_orders\ntemplateId: {tpl['id']}\nformat: csv\n"
        "fields: [id, region]\nfilter: region = 'EU'\n"
        "destination: {type: storage, path: eu}\n"
    )
    cfg = cli.json("configs", "create", "--file", str(spec), "--submit")
    assert (cfg["status"], cfg["fields"], cfg["filter"]) == (
        "SUBMITTED",
        ["id", "region"],
        "region = 'EU'",
    )

    out = tmp_path / "out"
    done = cli("run", cfg["id"], "--wait", "--download", str(out), "--json")
    execution = json.loads(done.stdout)
    assert execution["latestStatus"] == "COMPLETED"
    count = execution["runs"][-1]["recordCount"]
    # The progress bar's final line: status, records, rate, elapsed.
    final = done.stderr.strip().splitlines()
    assert any(
        re.search(rf"COMPLETED .* {count:,} records +[\d,]+ records/s +\d+:\d\d:\d\d", line)
        for line in final
    ), done.stderr
    [saved] = out.iterdir()
    rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert rows[0] == ["id", "region"] and len(rows) - 1 == count
    assert {r[1] for r in rows[1:]} == {"EU"}

    listed = cli.json("executions", "list", cfg["id"])
    assert [(e["id"], e["latestStatus"]) for e in listed] == [(execution["id"], "COMPLETED")]
    shown = cli.json("executions", "show", execution["id"])  # found without its configuration
    assert shown["id"] == execution["id"]
    again = cli("download", execution["id"], "-o", str(tmp_path / "again.csv"))
    assert again.stdout.strip() == str(tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == saved.read_bytes()

    # A request the server refuses: 1, the reason on stderr; unknown things: 3.
    bad = cli("run", cfg["id"], "--where", "nope = 1", code=1)
    assert "unknown column 'nope'" in bad.stderr
    cli("download", "missing", "--config", cfg["id"], code=3)
    cli("run", code=2)  # no configuration given: usage

    cli("configs", "delete", cfg["id"])
    cli("configs", "show", cfg["id"], code=3)


def test_schedules_and_pausing(logged_in: Cli, server: Server, shop: Path) -> None:
    cli = logged_in
    with Client(server.base_url, server.token) as client:
        conn = client.connections.create("nightly", "sqlite", {"path": str(shop)})
        [tpl] = [t for t in client.templates.list(conn).data if t.name == "main.orders"]
        cfg = client.configurations.create(
            name="nightly", template_id=tpl.id, format="csv", destination={"type": "storage"}
        )
        cfg_id = client.configurations.submit(cfg).id
    sch = cli.json("schedules", "add", cfg_id, "0 2 * * *", "--tz", "Europe/London")
    assert (sch["cron"], sch["timezone"], sch["enabled"]) == ("0 2 * * *", "Europe/London", True)
    assert [s["id"] for s in cli.json("schedules", "list", cfg_id)] == [sch["id"]]
    times = cli.json("schedules", "preview", cfg_id, sch["id"], "-n", "3")
    assert len(times) == 3 and all("T02:00:00" in t["atLocal"] for t in times), times
    assert times[0]["at"] == sch["nextRunAt"]

    paused = cli.json("configs", "pause", cfg_id, "--cancel-queued")
    assert paused["paused"] is True
    assert cli.json("configs", "resume", cfg_id)["paused"] is False
    assert cli("schedules", "remove", cfg_id, sch["id"]).stdout.strip() == f"removed {sch['id']}"
    with Client(server.base_url, server.token) as client:
        assert client.schedules.list(cfg_id) == []


def test_a_failed_run_exits_1_with_its_error(logged_in: Cli, tmp_path: Path) -> None:
    cli = logged_in
    db = tmp_path / "fragile.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE doomed (id INTEGER PRIMARY KEY)")
    conn_id = cli.json("connections", "add", "fragile", "-t", "sqlite", "-s", f"path={db}")["id"]
    [tpl] = cli.json("templates", "list", "-c", conn_id)
    cfg = cli.json(
        "configs",
        "create",
        "--name",
        "doomed",
        "--template",
        tpl["id"],
        "--format",
        "csv",
        "--submit",
    )
    db.unlink()
    failed = cli("run", cfg["id"], "--wait", code=1)
    assert "FAILED:" in failed.stderr and cfg["id"] not in failed.stderr


def test_ctrl_c_asks_and_cancels_the_run(logged_in: Cli, server: Server, pg_db: PgDatabase) -> None:
    """On PostgreSQL, whose planner estimates the rows a run reads: the bar shows a percentage
    and an ETA against that estimate, which the API shows as ``progress.estimatedTotal``."""
    cli = logged_in
    settings = {"host": "127.0.0.1", "port": 5432, "database": pg_db.name, "user": "postgres"}
    with Client(server.base_url, server.token) as client:
        conn = client.connections.create("slow", "postgresql", settings)
        tpl = client.templates.create(connection_id=conn.id, name="slow", query=PG_SLOW_QUERY)
        cfg = client.configurations.create(
            name="slow", template_id=tpl.id, format="csv", destination={"type": "storage"}
        )
        client.configurations.submit(cfg)

    primary, secondary = pty.openpty()
    env = {**cli.env, "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "egress.cli.main", "run", cfg.id, "--wait"],
        env=env,
        cwd=cli.cwd,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        preexec_fn=_ctrl_c_as_in_a_terminal,
    )
    os.close(secondary)
    screen = _read_until(primary, "ETA")
    assert re.search(r"IN_PROGRESS .* \d+% of ~30,000,000, ETA", screen), screen[-2000:]
    proc.send_signal(signal.SIGINT)  # what the terminal sends on Ctrl-C
    _read_until(primary, "cancel execution")
    os.write(primary, b"n\n")  # no: it goes on following the run
    _read_until(primary, "records")
    assert proc.poll() is None
    with Client(server.base_url, server.token) as client:
        [running] = client.executions.list(cfg).data
        assert running.latest_status == "IN_PROGRESS"
        progress = client.executions.get(running.id, cfg).progress
        assert progress is not None and progress.estimated_total == PG_ROWS
    proc.send_signal(signal.SIGINT)
    _read_until(primary, "cancel execution")
    os.write(primary, b"y\n")
    screen = _read_until(primary, "CANCELLED")
    assert proc.wait(timeout=60) == 1
    assert "cancelling" in screen
    os.close(primary)


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT at its default, as a shell in a terminal starts a command: a test run started
    in the background (``make test &``) ignores SIGINT, its children inherit that, and Python
    then installs no KeyboardInterrupt handler, so the CLI never saw the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _read_until(fd: int, text: str) -> str:
    seen = ""
    deadline = time.monotonic() + 90
    while text not in seen:
        assert time.monotonic() < deadline, seen[-2000:]
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                seen += os.read(fd, 65536).decode(errors="replace")
            except OSError:  # the child closed the terminal
                break
    return seen


def test_shell_completion_names_commands_and_subcommands(tmp_path: Path) -> None:
    """What bash asks when Tab is pressed (the script `--show-completion bash` prints sets
    these variables): the commands and subcommands that start with the typed word."""
    egress = str(Path(sys.executable).parent / "egress")

    def complete(words: str) -> list[str]:
        env = {**os.environ, "_EGRESS_COMPLETE": "complete_bash", "COMP_WORDS": words}
        env["COMP_CWORD"] = str(len(words.split(" ")) - 1)  # a trailing space: a new word
        done = subprocess.run([egress], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("egress con") == ["connections", "configs"]
    assert complete("egress configs pa") == ["pause"]
    assert complete("egress schedules ") == ["add", "list", "remove", "preview"]
    # The shell is the one the command runs in (typer asks the process tree), as a user's would.
    script = subprocess.run(
        ["bash", "-c", f'script=$({egress} --show-completion) && echo "$script"'],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "_EGRESS_COMPLETE=complete_bash" in script.stdout
