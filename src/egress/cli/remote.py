"""What the commands that talk to a server share: profiles (``egress login``), the SDK client
they all use, output as a table or as JSON, and exit codes.

Exit codes: 0 success; 1 a failed run or request; 2 a usage error (Typer's own, or no server
configured); 3 not found, unauthorized or forbidden."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
import httpx
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from egress.client import (
    ApiError,
    Client,
    EgressError,
    Forbidden,
    NotFound,
    RunFailed,
    Unauthorized,
)

P = ParamSpec("P")
R = TypeVar("R")
EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND = 1, 2, 3
out = Console(soft_wrap=True)  # results: tables, JSON
err = Console(stderr=True, soft_wrap=True)  # progress and messages: stdout stays parseable
for _console in (out, err):
    if not _console.is_terminal:  # a pipe or a file: no 80-column folding of ids and lines
        _console.width = 4096
JsonOption = typer.Option(False, "--json", help="print JSON (for jq) instead of a table")


class State:
    """The root options (``egress --profile NAME …``)."""

    profile: str = "default"


def profiles_file() -> Path:
    """``$XDG_CONFIG_HOME/egress/profiles.json`` (``~/.config/egress/…`` by default)."""
    return Path(click.get_app_dir("egress")) / "profiles.json"


def load_profiles() -> dict[str, dict[str, str]]:
    try:
        data: dict[str, dict[str, str]] = json.loads(profiles_file().read_text())
        return data
    except FileNotFoundError:
        return {}


def save_profile(name: str, url: str, token: str) -> Path:
    """Written 0600 from the first byte: the file holds bearer tokens."""
    profiles = {**load_profiles(), name: {"url": url.rstrip("/"), "token": token}}
    path = profiles_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(profiles, fh, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def settings() -> tuple[str, str | None]:
    """URL and token: ``EGRESS_URL`` / ``EGRESS_TOKEN`` override the profile's."""
    profile = load_profiles().get(State.profile, {})
    url = os.environ.get("EGRESS_URL") or profile.get("url")
    token = os.environ.get("EGRESS_TOKEN") or profile.get("token")
    if not url:
        err.print(
            f"error: no server for profile {State.profile!r}: run `egress login --url URL "
            "--token TOKEN`, or set EGRESS_URL and EGRESS_TOKEN"
        )
        raise typer.Exit(EXIT_USAGE)
    return url, token


@contextmanager
def client() -> Iterator[Client]:
    url, token = settings()
    with Client(url, token) as c:
        yield c


def _report(exc: Exception) -> int:
    """One message on stderr (with each field's problem); the exit code that goes with it."""
    if isinstance(exc, ApiError):
        err.print(f"error: {exc.detail}", markup=False, highlight=False)
        for e in exc.errors if len(exc.errors) > 1 else ():  # one: the detail says it
            err.print(f"  {e.get('field')}: {e.get('message')}", markup=False, highlight=False)
        if isinstance(exc, Unauthorized | Forbidden | NotFound):
            return EXIT_NOT_FOUND
        return EXIT_FAILED
    err.print(f"error: {exc}", markup=False, highlight=False)
    return EXIT_FAILED


def remote(fn: Callable[P, R]) -> Callable[P, R]:
    """A command that talks to the server: SDK errors become a message and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except RunFailed as exc:
            err.print(f"FAILED: {exc.error_message}", markup=False, highlight=False)
            if exc.retryable:
                err.print("the failure was transient: a re-run may succeed")
            raise typer.Exit(EXIT_FAILED) from None
        except (EgressError, httpx.HTTPError) as exc:
            raise typer.Exit(_report(exc)) from None

    return wrapper


def dumped(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list):
        return [dumped(v) for v in value]
    return value


def print_json(value: Any) -> None:
    out.print_json(json.dumps(dumped(value), ensure_ascii=False), highlight=False)


def print_table(
    rows: Sequence[BaseModel], columns: Sequence[tuple[str, Callable[[Any], Any]]]
) -> None:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for title, _ in columns:
        table.add_column(title, overflow="fold")
    for row in rows:
        table.add_row(*("" if (v := get(row)) is None else str(v) for _, get in columns))
    out.print(table)


def show(value: BaseModel, as_json: bool) -> None:
    """One object: JSON, or its fields as a two-column table."""
    if as_json:
        print_json(value)
        return
    table = Table(show_header=False, show_edge=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, v in dumped(value).items():
        shown = json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
        table.add_row(key, "" if shown is None else str(shown))
    out.print(table)
