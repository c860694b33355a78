"""Every shell example of the README, run in order as a newcomer pastes them: one shell's
variables carry from block to block (ids captured as the README shows), starting with the
server the README itself starts in "Using the API", on the demo database where `make demo`
puts it. A block that cannot run here says so in the README with a marker before it
(``<!-- readme-test: skip <why> -->``); the CLI session and the SDK script (``cli``,
``sdk-run``) are run, with their outputs checked, by tests/e2e/test_readme_client.py."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

from tests.conftest import free_port
from tests.support.newcomer import newcomer_env

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"(?:<!-- readme-test: (\S+)(?: ([^>]*?))? -->\n)?```sh\n(.*?)```", re.DOTALL)
# After each block, the shell's variables for the next one: the README's own (capitals), not
# the shell's (grep -E: bash's regexes know no \w) nor a read-only one.
_SAVE = (
    "declare -p $(compgen -v | grep -E '^[A-Z][A-Z0-9_]*$' | grep -vxE "
    "'BASH.*|SHELL.*|PWD|OLDPWD|SHLVL|PATH|HOME|E?UID|PPID|HOST.*|OSTYPE|MACHTYPE|IFS|OPT.*|"
    "PS[0-9]|DIRSTACK|GROUPS|LINENO|S?RANDOM|SECONDS|FUNCNAME|PIPESTATUS|COLUMNS|LINES|"
    "EPOCH.*|STATE') | grep -v '^declare -[a-zA-Z]*r' > \"$STATE\""
)


def blocks() -> list[tuple[str | None, str | None, str]]:
    return [
        (kind or None, why or None, body) for kind, why, body in BLOCK.findall(README.read_text())
    ]


def test_every_block_is_run_or_says_why_not() -> None:
    found = blocks()
    assert len(found) > 20
    for kind, why, body in found:
        assert kind in (None, "skip", "cli", "sdk-run"), kind
        assert kind != "skip" or why, body[:200]  # a skip says why
    skipped = [body for kind, _, body in found if kind == "skip"]
    assert len(skipped) <= len(found) // 2, "keep the blocks that cannot run here few"


def test_the_readme_runs_in_order(tmp_path: Path) -> None:
    home = tmp_path / "newcomer"
    env = newcomer_env(
        home, home / ".venv" / "bin", EGRESS_PORT=str(free_port()), STATE=str(tmp_path / "state.sh")
    )
    (tmp_path / "state.sh").write_text("")
    groups: list[int] = []
    try:
        for kind, _, body in blocks():
            if kind is not None:
                continue
            script = f'source "$STATE"\nset -euo pipefail\n{body}\n{_SAVE}\n'
            # Files, not pipes: a server started in the background keeps its output open.
            with (tmp_path / "out").open("w") as out_file, (tmp_path / "err").open("w") as err:
                process = subprocess.Popen(
                    ["bash", "-c", script],
                    cwd=home,
                    env=env,
                    stdout=out_file,
                    stderr=err,
                    start_new_session=True,  # its own group, with what it leaves running
                )
                groups.append(process.pid)
                process.wait(timeout=120)
            out = (tmp_path / "out").read_text(errors="replace")
            why = (body, out[-3000:], (tmp_path / "err").read_text(errors="replace")[-3000:])
            assert process.returncode == 0, why
            assert '"status":5' not in out.replace(" ", ""), (body, out[-3000:])
    finally:
        for group in groups:
            with contextlib.suppress(ProcessLookupError):  # nothing left in the background
                os.killpg(group, signal.SIGTERM)
