"""``egress``: run the service, a worker, migrations, or the demo."""

from __future__ import annotations

import logging
import math
import os
import secrets
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit, urlunsplit

import typer
from rich.console import Console

from egress.cli.admin import admin_app
from egress.cli.exporting import export
from egress.cli.remote import State, err, remote, save_profile
from egress.cli.resources import configs_app, connections_app, templates_app
from egress.cli.runs import download, executions_app, run
from egress.cli.schedules import schedules_app
from egress.cli.stop_signals import stop_on_signals
from egress.client import Configuration, Execution
from egress.settings import Settings

if TYPE_CHECKING:  # imported when a server command runs: client commands start quickly
    from egress.cli.background import Background
    from egress.cli.serving import GracefulServer
    from egress.container import Container

app = typer.Typer(
    help="Egress: asynchronous data extraction and bulk export.", no_args_is_help=True
)
db_app = typer.Typer(help="Metadata database commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
app.add_typer(connections_app, name="connections")
app.add_typer(templates_app, name="templates")
app.add_typer(configs_app, name="configs")
app.add_typer(schedules_app, name="schedules")
app.add_typer(executions_app, name="executions")
console = Console()
log = logging.getLogger(__name__)
# Files and folders the process creates — SQLite databases with their -wal/-shm files, the
# warehouse, the secret key, output files under a local store — are the running user's only.
PRIVATE_UMASK = 0o077


@app.callback()
def _root(
    profile: str = typer.Option(
        "default", "--profile", envvar="EGRESS_PROFILE", help="saved server to talk to"
    ),
) -> None:
    """Egress: asynchronous data extraction and bulk export."""
    os.umask(PRIVATE_UMASK)
    State.profile = profile


@app.command()
def login(
    url: str = typer.Option(..., "--url", help="the server, e.g. http://127.0.0.1:8000"),
    token: str = typer.Option(..., "--token", help="an API token", prompt=True, hide_input=True),
    profile: str | None = typer.Option(None, "--profile", help="save under this name"),
) -> None:
    """Check a token against a server and save both as a profile (EGRESS_URL/TOKEN override)."""
    name = profile or State.profile
    check = remote(_check_login)
    check(url, token)
    path = save_profile(name, url, token)
    err.print(f"logged in to {url} (profile {name!r}, saved in {path})", highlight=False)


def _check_login(url: str, token: str) -> None:
    from egress.client import Client

    with Client(url, token) as c:
        c.connections.list(limit=1)


def _setup(settings: Settings, migrate: bool = True) -> Container:
    """Logging, a migrated metadata database (migrated here, or checked when ``migrate`` is
    False) and key rings that fit it; otherwise one line on stderr and exit status 1."""
    from egress.container import Container
    from egress.db.migrate import migration_problem, upgrade
    from egress.services.preflight import NotReady, check_key_rings

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    container = Container.build(settings)
    if migrate:
        upgrade(settings.resolved_database_url)
    elif problem := migration_problem(settings.resolved_database_url):
        _refuse(problem)
    try:
        check_key_rings(container)
    except NotReady as exc:
        _refuse(str(exc))
    container.services.identity.ensure_bootstrap_token(container.settings.bootstrap_token)
    return container


def _refuse(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


# How often Python hands the GIL to another waiting thread when the worker shares the process
# with the API (Python's default: 5 ms). The event loop needs the GIL back after every wait, so
# while an extraction thread computes, each request waited up to 5 ms several times over: at
# 1 ms the p99 of status polls during a JSONL extraction fell from 0.6-1.5 s to 0.4-0.6 s on a
# busy 2-core machine (bench/README.md). It changes nothing while no thread waits.
EMBEDDED_SWITCH_INTERVAL_S = 0.001


def _server(
    container: Container,
    with_worker: bool,
    with_scheduler: bool = True,
    background: Background | None = None,
) -> GracefulServer:
    """uvicorn over the API; ``with_worker``/``with_scheduler`` run those in this process
    (EGRESS_EMBEDDED_WORKER thread), ``background`` is the child process running them."""
    import uvicorn

    from egress.api.app import create_app
    from egress.cli.serving import GracefulServer

    if with_worker:
        sys.setswitchinterval(EMBEDDED_SWITCH_INTERVAL_S)
    s = container.settings
    app = create_app(container, with_worker=with_worker, with_scheduler=with_scheduler)
    config = uvicorn.Config(
        app,
        host=s.host,
        port=s.port,
        log_level=s.log_level.lower(),
        access_log=s.access_log,
        # The C event loop and HTTP parser (uvicorn[standard]), named rather than "auto" so a
        # missing one fails at start instead of silently serving on the slower pure-Python
        # ones: each costs a status poll a noticeable share of its CPU.
        loop="uvloop",
        http="httptools",
        # Requests still running after the grace are cancelled (a thread blocked in a driver
        # call is left behind: the process exits without it).
        timeout_graceful_shutdown=math.ceil(s.shutdown_grace_s),
    )
    return GracefulServer(config, app, s.shutdown_grace_s, background)


# How long past its grace the API waits for its worker process to stop before killing it.
BACKGROUND_STOP_MARGIN_S = 5.0


def _serving(container: Container, worker: bool, scheduler: bool) -> GracefulServer:
    """The server of ``serve`` and ``demo``, its worker and scheduler where the settings say;
    a child process is forked here, before uvicorn starts a thread or a loop."""
    if container.settings.embedded_worker == "thread" or not (worker or scheduler):
        return _server(container, with_worker=worker, with_scheduler=scheduler)
    from egress.cli.background import start_background

    background = start_background(container, worker=worker, scheduler=scheduler)
    return _server(container, with_worker=False, with_scheduler=False, background=background)


def _run(server: GracefulServer) -> None:
    """Serve until stopped, then wait for the worker process (if any) to finish stopping."""
    try:
        server.run()
    finally:
        server.join_background(BACKGROUND_STOP_MARGIN_S)


@app.command()
def serve(
    no_worker: bool = typer.Option(False, "--no-worker", help="serve without the worker"),
    no_scheduler: bool = typer.Option(False, "--no-scheduler", help="serve without the scheduler"),
) -> None:
    """Migrate the database, then serve the API (and, by default, an embedded worker and
    scheduler)."""
    container = _setup(Settings())
    _run(_serving(container, worker=not no_worker, scheduler=not no_scheduler))


@app.command()
def scheduler() -> None:
    """Run the scheduler alone (any number may run at once: each slot fires once), against a
    metadata database migrated by serve or db upgrade."""
    settings = Settings()
    loop = _setup(settings, migrate=False).scheduler()
    loop.start()
    log.info("scheduler started (a round every %ss)", settings.scheduler_interval_s)
    _wait_for_signal()
    loop.stop(settings.shutdown_grace_s)


def _wait_for_signal() -> None:
    """Block until SIGTERM or SIGINT."""
    stop = threading.Event()
    stop_on_signals(stop)
    stop.wait()


@app.command()
def worker(name: str = typer.Option("worker", help="name shown in processId")) -> None:
    """Run the claim loop alone, against a metadata database migrated by serve or db upgrade."""
    settings = Settings()
    container = _setup(settings, migrate=False)
    w = container.worker(name=name)
    w.start()
    log.info(
        "worker %s started: %s slots, metadata database %s, storage %s",
        name,
        settings.worker_concurrency,
        without_credentials(settings.resolved_database_url),
        without_credentials(settings.resolved_storage_url),
    )
    _wait_for_signal()
    console.print(f"stopping: finishing running runs (grace {settings.shutdown_grace_s:.0f}s)")
    w.stop(settings.shutdown_grace_s)


def without_credentials(url: str) -> str:
    """A URL fit for a log: no user name, no password (``postgresql://u:p@h/db`` →
    ``postgresql://h/db``)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations to the metadata database."""
    from egress.db.migrate import upgrade

    settings = Settings()
    settings.ensure_data_dir()
    upgrade(settings.resolved_database_url)
    console.print(f"database at head: {without_credentials(settings.resolved_database_url)}")


@app.command()
def demo(rows: int = typer.Option(5000, help="orders in the generated sample database")) -> None:
    """Seed a demo workspace, run one extraction end to end, then keep serving."""
    from egress.client import Client
    from egress.demo import create_orders_db, run_demo
    from egress.sources.policy import SourcePolicy

    settings = Settings()
    settings.ensure_data_dir()
    token_file = settings.resolved_data_dir / "demo-token"
    if not settings.bootstrap_token:
        if not token_file.exists():
            token_file.write_text(secrets.token_hex(24))
            token_file.chmod(0o600)
        settings.bootstrap_token = token_file.read_text().strip()
    token = settings.bootstrap_token
    # Inside the first files root (by default <data dir>/sources), where sqlite paths may point.
    db_path = SourcePolicy.from_settings(settings).files_roots[0] / "demo" / "shop.db"
    if not db_path.exists():
        create_orders_db(db_path, rows)
        console.print(f"generated sample database: {db_path} ({rows} orders)")
    container = _setup(settings)
    server = _serving(container, worker=True, scheduler=True)
    thread = threading.Thread(target=_run, args=(server,), daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise typer.Exit(1)
        time.sleep(0.05)
    base = f"http://{settings.host}:{settings.port}"
    with Client(base, token) as client:
        result = run_demo(client, db_path, settings.resolved_data_dir / "downloads")
    _print_demo(base, token, result)
    try:
        thread.join()
    except KeyboardInterrupt:
        server.should_exit = True
        thread.join()


def _print_demo(base: str, token: str, result: dict[str, object]) -> None:
    """Plain print: the curl lines must survive copy and paste unwrapped."""
    execution = result["execution"]
    config = result["config"]
    assert isinstance(execution, Execution) and isinstance(config, Configuration)
    print("\n=== Egress demo ===")
    print(f"execution {execution.id}: {execution.latest_status}")
    print(f"records:   {execution.latest.record_count}")
    path = result["file"]
    if isinstance(path, Path):
        print(f"file:      {path}")
        with path.open(encoding="utf-8") as fh:
            for _ in range(4):
                print("  | " + fh.readline().rstrip("\n"))
    cfg = f"{base}/api/v1/extraction-configurations/{config.id}"
    auth = f'-H "Authorization: Bearer {token}"'
    print(f"\nServing {base} (docs: {base}/docs)")
    print(f"Bearer token: {token}\n")
    print("# trigger a new execution")
    print(f"curl -s -X POST {auth} {cfg}/executions")
    print("# poll an execution (this one, or the id the trigger returned)")
    print(f"curl -s {auth} {cfg}/executions/{execution.id}")
    print("# download its file")
    print(f"curl -sLOJ {auth} {cfg}/executions/{execution.id}/download")
    print("\nCtrl-C to stop.", flush=True)


# Client commands, listed after the server's own.
app.command("run")(run)
app.command("download")(download)
app.command("export")(export)

if __name__ == "__main__":
    app()
