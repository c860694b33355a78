"""``egress export OBJECT --all -o DIR``: a whole object through the bulk-export API, job after
job, with one progress bar across the jobs (resumable: see ``egress.client.exports``)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from egress.cli.remote import JsonOption, client, err, out, print_json, remote
from egress.client import ExportProgress


@remote
def export(
    object: str = typer.Argument(..., help="a data table's name, or a template as t-<id>"),
    all_jobs: bool = typer.Option(
        False, "--all", help="follow nextCursor to the last object (else one job)"
    ),
    output: Path = typer.Option(..., "-o", "--output", help="directory: part files + index.json"),
    format: str = typer.Option("jsonl", "--format", help="jsonl, csv or parquet"),
    fields: str | None = typer.Option(None, "--fields", help="comma-separated (default all)"),
    firm: str | None = typer.Option(None, "--firm", help="workspace id (default: the token's)"),
    csv_dialect: str | None = typer.Option(
        None, "--csv-dialect", help="postgres: PostgreSQL's own CSV rendering (CSV only)"
    ),
    as_json: bool = JsonOption,
) -> None:
    """Export an object to DIR, one file per job; run it again to resume after an
    interruption."""
    with client() as c:
        known = {o.name: o.approximate_count for o in c.exports.objects(firm=firm)}
        columns = (
            SpinnerColumn(finished_text="✓"),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f} objects"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=err) as progress:
            task = progress.add_task("starting", total=known.get(object))

            def update(p: ExportProgress) -> None:
                done = p.objects_done + (p.processed if p.status != "Completed" else 0)
                waiting = " (waiting: another export job of yours is active)"
                note = waiting if p.status == "RateLimited" else ""
                description = f"{p.jobs_done} jobs done, {p.status}{note}"
                progress.update(task, description=description, completed=done)

            index = c.exports.export_all(
                object,
                output,
                format=format,
                fields=fields.split(",") if fields else None,
                firm=firm,
                on_progress=update,
                jobs=None if all_jobs else 1,
                csv_dialect=csv_dialect,
            )
            state = "complete" if index.complete else "more remain"
            progress.update(
                task,
                description=f"{len(index.jobs)} jobs, {state}",
                total=index.total,
                completed=index.total,
            )
    if as_json:
        print_json(index)
        return
    out.print(
        f"{index.total} objects in {len(index.jobs)} files under {output}"
        + ("" if index.complete else " (more remain: run again with --all)"),
        markup=False,
        highlight=False,
    )
