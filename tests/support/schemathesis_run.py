"""Schemathesis over every OpenAPI document a server publishes (native, and each face's), with
all its checks, as a real client of a real server: ``st run`` talks HTTP to the server's socket.

Shared by the bounded run of ``make test`` (tests/e2e/test_openapi_conformance.py) and the
longer one of ``bench/schemathesis_run.py``. Before a run, ``seed`` makes a real object of each
kind, whose ids the run uses for path parameters and body references, so the deep routes reach
their logic rather than a 404.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import wait_for_status
from tests.support.http import API, sqlite_connection, submitted_configuration, template

# Each document of the server, by the prefix its paths are relative to.
DOCUMENTS = ("", "/api/v3", "/api/v3.1")
# What the run leaves out, and why (the token and the seeded ids are added per run).
CONFIG_TAIL = Path(__file__).with_name("schemathesis.toml")


def seed(http: httpx.Client, db: Path) -> dict[str, str]:
    """A real object of each kind (a finished execution with a file included), by the name of
    the path parameter that names it."""
    connection = sqlite_connection(http, db, "schemathesis")
    tpl = str(template(http, connection, "main.orders")["id"])
    cfg = submitted_configuration(http, tpl, "schemathesis")
    r = http.post(f"{API}/extraction-configurations/{cfg}/executions", json={})
    assert r.status_code == 202, r.text
    execution = str(r.json()["id"])
    wait_for_status(http, cfg, execution, {"COMPLETED"})
    schedule = http.post(
        f"{API}/extraction-configurations/{cfg}/schedules", json={"cron": "@daily"}
    )
    assert schedule.status_code == 201, schedule.text
    # Spares for the DELETEs: the run must not revoke its own token (an admin may revoke any).
    spare = {
        "token_id": http.post(f"{API}/tokens", json={"name": "spare"}),
        "client_id": http.post(f"{API}/clients", json={"name": "spare", "role": "viewer"}),
        "user_id": http.post(f"{API}/users", json={"email": "spare@x.test", "role": "viewer"}),
    }
    for r in spare.values():
        assert r.status_code == 201, r.text
    return {
        **{name: str(r.json()["id"]) for name, r in spare.items()},
        "connection_id": connection,
        "template_id": tpl,
        "config_id": cfg,
        "execution_id": execution,
        "schedule_id": str(schedule.json()["id"]),
        "extract_id": cfg,
        "datasource_name": "sqlite",
    }


def config(ids: dict[str, str], token: str) -> str:
    """``schemathesis.toml``: the admin token, the seeded ids for path parameters, and what
    the run leaves out (``CONFIG_TAIL``)."""
    lines = [f"headers = {{ Authorization = {json.dumps(f'Bearer {token}')} }}", ""]
    lines += ["[parameters]"]
    lines += [f'"path.{name}" = {json.dumps(value)}' for name, value in ids.items()]
    return "\n".join(lines) + "\n\n" + CONFIG_TAIL.read_text()


def run(
    base_url: str, ids: dict[str, str], token: str, workdir: Path, *, max_time: int, seed: int
) -> list[dict[str, Any]]:
    """One ``st run`` per document; the failures found (empty: none)."""
    toml = workdir / "schemathesis.toml"
    toml.write_text(config(ids, token))
    failures: list[dict[str, Any]] = []
    for prefix in DOCUMENTS:
        budget = max_time if not prefix else max(10, max_time // 5)  # the faces are small
        done = subprocess.run(
            [
                *(
                    sys.executable,
                    "-c",
                    "from schemathesis.cli import schemathesis; schemathesis()",
                ),
                *("--config-file", str(toml), "--no-color", "run"),
                f"{base_url}{prefix}/openapi.json",
                # Every check is on unless the config file turns it off (--checks all would
                # override the file's per-operation settings).
                *("--url", f"{base_url}{prefix}", "--seed", str(seed)),
                *("--max-time", str(budget), "--workers", "1"),
            ],
            capture_output=True,
            text=True,
            timeout=budget * 4 + 120,
        )
        if done.returncode != 0:
            failures.append({"document": prefix or "/", "output": done.stdout[-20000:]})
    return failures
