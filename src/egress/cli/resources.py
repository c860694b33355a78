"""``egress connections``, ``egress templates``, ``egress configs``: the API's resources from a
shell, through the SDK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.tree import Tree

from egress.cli.remote import (
    EXIT_FAILED,
    JsonOption,
    client,
    out,
    print_json,
    print_table,
    remote,
    show,
)
from egress.client import Element

connections_app = typer.Typer(help="Sources: register, test, browse.", no_args_is_help=True)
templates_app = typer.Typer(help="Datasets of a connection.", no_args_is_help=True)
configs_app = typer.Typer(help="Extraction configurations.", no_args_is_help=True)
LIMIT = 200


def pairs(values: list[str], option: str) -> dict[str, Any]:
    """``key=value`` options; a value that is JSON (a number, true, a list) is taken as such."""
    result: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=option)
        try:
            result[key] = json.loads(value)
        except ValueError:
            result[key] = value
    return result


def read_document(path: Path) -> dict[str, Any]:
    """A YAML or JSON file (JSON is YAML) holding one object."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--file") from None
    if not isinstance(data, dict):
        raise typer.BadParameter("the file must hold one object (a mapping)", param_hint="--file")
    return data


# ----------------------------------------------------------------- connections
@connections_app.command("add")
@remote
def connections_add(
    name: str = typer.Argument(..., help="a name of your choice"),
    type: str = typer.Option(..., "--type", "-t", help="postgresql, mysql, sqlite or files"),
    setting: list[str] = typer.Option([], "--setting", "-s", help="KEY=VALUE, repeatable"),
    secret: list[str] = typer.Option([], "--secret", help="KEY=VALUE, write-only, repeatable"),
    as_json: bool = JsonOption,
) -> None:
    """Register a source: ``egress connections add shop -t sqlite -s path=/data/shop.db``."""
    settings, secrets = pairs(setting, "--setting"), pairs(secret, "--secret")
    with client() as c:
        show(
            c.connections.create(name, type, settings, {k: str(v) for k, v in secrets.items()}),
            as_json,
        )


@connections_app.command("list")
@remote
def connections_list(as_json: bool = JsonOption) -> None:
    with client() as c:
        items = c.connections.list(limit=LIMIT).data
    if as_json:
        print_json(items)
        return
    print_table(
        items, [("ID", lambda r: r.id), ("NAME", lambda r: r.name), ("TYPE", lambda r: r.type)]
    )


@connections_app.command("show")
@remote
def connections_show(connection_id: str, as_json: bool = JsonOption) -> None:
    with client() as c:
        show(c.connections.get(connection_id), as_json)


@connections_app.command("test")
@remote
def connections_test(connection_id: str, as_json: bool = JsonOption) -> None:
    """Connect and read the catalog; exit status 1 when the source cannot be read."""
    with client() as c:
        result = c.connections.test(connection_id)
    if as_json:
        print_json(result)
    else:
        out.print("ok" if result.ok else f"failed: {result.error}", markup=False)
        for warning in result.warnings:
            out.print(f"warning: {warning}", markup=False)
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)


@connections_app.command("browse")
@remote
def connections_browse(connection_id: str, as_json: bool = JsonOption) -> None:
    """The connection's folders, tables or files, and columns."""
    with client() as c:
        elements = c.connections.elements(connection_id)
    if as_json:
        print_json(elements)
        return
    tree = Tree(connection_id)
    for e in elements:
        _branch(tree, e)
    out.print(tree)


def _branch(parent: Tree, element: Element) -> None:
    label = element.name + (f"  [dim]{element.type}[/]" if element.type else "")
    node = parent.add(label if element.element_type != "FOLDER" else f"[bold]{element.name}[/]")
    for child in element.children:
        _branch(node, child)


# ------------------------------------------------------------------- templates
@templates_app.command("list")
@remote
def templates_list(
    connection: str | None = typer.Option(None, "--connection", "-c", help="discover it first"),
    as_json: bool = JsonOption,
) -> None:
    with client() as c:
        items = c.templates.list(connection, limit=LIMIT).data
    if as_json:
        print_json(items)
        return
    print_table(
        items,
        [
            ("ID", lambda t: t.id),
            ("NAME", lambda t: t.name),
            ("KIND", lambda t: t.kind),
            ("FIELDS", lambda t: len(t.fields)),
            ("PRIMARY KEY", lambda t: ",".join(t.primary_key)),
        ],
    )


@templates_app.command("show")
@remote
def templates_show(template_id: str, as_json: bool = JsonOption) -> None:
    with client() as c:
        show(c.templates.get(template_id), as_json)


# -------------------------------------------------------------- configurations
@configs_app.command("create")
@remote
def configs_create(
    file: Path | None = typer.Option(
        None, "--file", "-f", help="YAML or JSON, as the API spells it"
    ),
    name: str | None = typer.Option(None, "--name"),
    template: str | None = typer.Option(None, "--template", help="template id"),
    format: str | None = typer.Option(None, "--format", help="csv, jsonl or parquet"),
    path: str | None = typer.Option(None, "--path", help="folder under the file store"),
    fields: str | None = typer.Option(None, "--fields", help="comma-separated"),
    split_by: str | None = typer.Option(None, "--split-by"),
    filter: str | None = typer.Option(None, "--filter", help="default whereClause"),
    only_new: bool | None = typer.Option(None, "--only-new/--all-records"),
    submit: bool = typer.Option(False, "--submit", help="submit it right away"),
    as_json: bool = JsonOption,
) -> None:
    """A DRAFT configuration from flags and/or a file (flags win)."""
    body = read_document(file) if file else {}
    flags: dict[str, Any] = {
        "name": name,
        "templateId": template,
        "format": format,
        "fields": fields.split(",") if fields else None,
        "splitBy": split_by,
        "filter": filter,
        "extractOnlyNew": only_new,
    }
    body.update({k: v for k, v in flags.items() if v is not None})
    if path is not None:
        body["destination"] = {"type": "storage", "path": path}
    body.setdefault("destination", {"type": "storage"})
    with client() as c:
        created = c.configurations.create(body)
        show(c.configurations.submit(created) if submit else created, as_json)


@configs_app.command("list")
@remote
def configs_list(
    status: str | None = typer.Option(None, "--status", help="DRAFT or SUBMITTED"),
    as_json: bool = JsonOption,
) -> None:
    with client() as c:
        items = c.configurations.list(status=status, limit=LIMIT).data
    if as_json:
        print_json(items)
        return
    print_table(
        items,
        [
            ("ID", lambda r: r.id),
            ("NAME", lambda r: r.name),
            ("STATUS", lambda r: r.status),
            ("ACTIVE", lambda r: "yes" if r.active else "no"),
            ("FORMAT", lambda r: r.format),
        ],
    )


@configs_app.command("show")
@remote
def configs_show(config_id: str, as_json: bool = JsonOption) -> None:
    with client() as c:
        show(c.configurations.get(config_id), as_json)


@configs_app.command("submit")
@remote
def configs_submit(config_id: str, as_json: bool = JsonOption) -> None:
    with client() as c:
        show(c.configurations.submit(config_id), as_json)


@configs_app.command("delete")
@remote
def configs_delete(config_id: str) -> None:
    with client() as c:
        c.configurations.delete(config_id)
    out.print(f"deleted {config_id}", markup=False, highlight=False)


@configs_app.command("pause")
@remote
def configs_pause(
    config_id: str,
    cancel_queued: bool = typer.Option(
        False, "--cancel-queued", help="also cancel queued scheduled and backfill runs"
    ),
    as_json: bool = JsonOption,
) -> None:
    """Stop schedule and backfill firing (manual runs still work)."""
    with client() as c:
        show(c.configurations.pause(config_id, cancel_queued=cancel_queued), as_json)


@configs_app.command("resume")
@remote
def configs_resume(config_id: str, as_json: bool = JsonOption) -> None:
    """Fire again from the next slot on (paused slots are not replayed)."""
    with client() as c:
        show(c.configurations.resume(config_id), as_json)
