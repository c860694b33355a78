"""``egress admin``: workspaces and API tokens, straight on the metadata database.

Works on the database the settings name (EGRESS_DATA_DIR / EGRESS_DATABASE_URL), migrating it
first, also while a server runs on it. Rules live in ``services.identity``; this only prints.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import typer

from egress.container import Container
from egress.db.migrate import upgrade
from egress.db.workspaces import TokenRecord
from egress.domain.errors import EgressError
from egress.domain.identity import ROLES
from egress.settings import Settings

admin_app = typer.Typer(help="Workspaces and API tokens.", no_args_is_help=True)


@contextmanager
def _container() -> Iterator[Container]:
    """A migrated database; a rule broken is one line on stderr and exit status 1."""
    logging.basicConfig(level=logging.WARNING)  # stdout is for the command's own output
    settings = Settings()
    container = Container.build(settings)
    try:
        upgrade(settings.resolved_database_url)
        yield container
    except EgressError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.engine.dispose()
        container.warehouse.engine.dispose()


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


@admin_app.command("create-workspace")
def create_workspace(name: str = typer.Argument(..., help="unique workspace name")) -> None:
    """Create a workspace; prints its id."""
    with _container() as c:
        typer.echo(c.services.identity.create_workspace(name))


@admin_app.command("create-token")
def create_token(
    workspace: str = typer.Option(..., "--workspace", help="the workspace's name"),
    role: str = typer.Option(..., "--role", help=f"one of: {', '.join(ROLES)}"),
    expires_in: int | None = typer.Option(
        None, "--expires-in", help="days until the token stops working (default: never)"
    ),
    name: str = typer.Option("cli", "--name", help="a label shown by list-tokens"),
) -> None:
    """Create an API token; prints it once, alone on the last line. Only its HMAC is stored."""
    with _container() as c:
        new = c.services.identity.create_token(
            c.workspaces.workspace_id(workspace), role, name, expires_in
        )
        r = new.record
        typer.echo(
            f"created {r.role} token {r.id} ({r.name!r}) in workspace {r.workspace_name!r}, "
            f"expires {_when(r.expires_at) if r.expires_at else 'never'}"
        )
        typer.echo("the token is shown only now; store it:")
        typer.echo(new.token)


def _row(r: TokenRecord) -> list[str]:
    return [
        r.id,
        r.workspace_name,
        r.name,
        r.role,
        _when(r.created_at),
        _when(r.expires_at),
        _when(r.revoked_at),
    ]


@admin_app.command("list-tokens")
def list_tokens(
    workspace: str | None = typer.Option(None, "--workspace", help="only this workspace's"),
) -> None:
    """List tokens (never the tokens themselves, nor their hashes)."""
    with _container() as c:
        ws = None if workspace is None else c.workspaces.workspace_id(workspace)
        rows = [["id", "workspace", "name", "role", "created", "expires", "revoked"]]
        rows += [_row(r) for r in c.services.identity.list_tokens(ws)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@admin_app.command("revoke-token")
def revoke_token(token_id: str = typer.Argument(..., help="the id list-tokens shows")) -> None:
    """Revoke a token: requests with it are 401 from now on."""
    with _container() as c:
        r = c.services.identity.revoke_token(token_id)
        typer.echo(f"revoked token {r.id} ({r.name!r}) of workspace {r.workspace_name!r}")


@admin_app.command("rotate-key")
def rotate_key() -> None:
    """Re-seal every connection's secrets under the first key of EGRESS_SECRET_KEYS.

    Put the new key first, keeping the old ones, in every process's EGRESS_SECRET_KEYS; run
    this once (again is harmless); then drop the old keys everywhere."""
    with _container() as c:
        n = c.services.key_rotation.rotate()
        typer.echo(
            f"re-sealed {n.resealed}, already current {n.current}, changed meanwhile "
            f"{n.changed_meanwhile}, unreadable {n.unreadable}"
        )
        if n.unreadable:
            typer.echo("some secrets open with no key of the ring: see the log above", err=True)
            raise typer.Exit(1)
