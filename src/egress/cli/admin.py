"""``egress admin``: workspaces and API tokens, straight on the metadata database.

Works on the database the settings name (EGRESS_DATA_DIR / EGRESS_DATABASE_URL), migrating it
first, also while a server runs on it. Rules live in ``services.identity``; this only prints.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import typer

from egress.domain.errors import EgressError
from egress.domain.identity import ROLES
from egress.settings import Settings

if TYPE_CHECKING:  # the container is imported when a command runs: `egress --help` stays quick
    from egress.container import Container
    from egress.db.workspaces import TokenRecord

admin_app = typer.Typer(help="Workspaces and API tokens.", no_args_is_help=True)


@contextmanager
def _container() -> Iterator[Container]:
    """A migrated database; a rule broken is one line on stderr and exit status 1."""
    logging.basicConfig(level=logging.WARNING)  # stdout is for the command's own output
    from egress.container import Container
    from egress.db.migrate import upgrade

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


@admin_app.command("create-user")
def create_user(
    email: str = typer.Argument(..., help="the user's email (their sign-in name)"),
    workspace: str = typer.Option(..., "--workspace", help="the workspace's name"),
    role: str = typer.Option(..., "--role", help=f"one of: {', '.join(ROLES)}"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="read a password from the first line of stdin"
    ),
) -> None:
    """Add a user to a workspace (a new account, or an existing one by email); prints its id."""
    import sys

    from egress.domain.identity import MIN_PASSWORD_LENGTH

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        typer.echo(f"error: the password needs at least {MIN_PASSWORD_LENGTH} characters", err=True)
        raise typer.Exit(1)
    with _container() as c:
        member = c.services.users.add(c.workspaces.workspace_id(workspace), email, role, password)
        typer.echo(member.id)


@admin_app.command("create-client")
def create_client(
    name: str = typer.Argument(..., help="a label for the client"),
    workspace: str = typer.Option(..., "--workspace", help="the workspace's name"),
    role: str = typer.Option(..., "--role", help=f"one of: {', '.join(ROLES)}"),
    redirect_uri: list[str] = typer.Option(
        [], "--redirect-uri", help="for the authorization code flow (repeatable)"
    ),
    public: bool = typer.Option(False, "--public", help="a browser app: no secret, PKCE only"),
) -> None:
    """Create an OAuth client; prints its id, then its secret (shown only now) on the last line."""
    with _container() as c:
        ws = c.workspaces.workspace_id(workspace)
        new = c.services.users.create_client(ws, name, role, redirect_uri, public=public)
        typer.echo(f"created {new.record.role} client {new.record.name!r} in {workspace!r}")
        typer.echo(new.record.id)
        if new.secret is not None:
            typer.echo(new.secret)


@admin_app.command("rotate-signing-key")
def rotate_signing_key() -> None:
    """Add a new signing key in front of the ring: it signs from the next start on, the older
    keys still verify (tokens, cursors and access tokens signed before keep working)."""
    from egress.signing import new_signing_key_entry

    settings = Settings()
    entry = new_signing_key_entry()
    if settings.signing_keys:
        typer.echo("EGRESS_SIGNING_KEYS is set: give every process this value and restart them:")
        typer.echo(f"{entry},{settings.signing_keys}")
        return
    path = settings.signing_key_path
    old = path.read_text().strip() if path.exists() else ""
    aside = path.with_name(f".{path.name}.new")
    aside.write_text(f"{entry},{old}" if old else entry)
    aside.chmod(0o600)
    aside.replace(path)  # atomic: a process starting now reads the old ring or the new one
    typer.echo(f"added signing key {entry.split(':')[0]} to {path}; restart Egress to sign with it")


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
