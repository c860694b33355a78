"""``egress run``, ``egress executions``, ``egress download``: trigger, follow with a live
progress bar (records, rate, elapsed), cancel on Ctrl-C, and fetch verified files."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.prompt import Confirm
from rich.text import Text

from egress.cli.remote import (
    EXIT_FAILED,
    JsonOption,
    client,
    err,
    out,
    print_json,
    print_table,
    remote,
    show,
)
from egress.client import Client, Execution

executions_app = typer.Typer(
    help="Executions: list, show, re-run, cancel, watch.", no_args_is_help=True
)
ConfigOption = typer.Option(
    None, "--config", "-c", help="the execution's configuration (else looked up)"
)


class RecordRate(ProgressColumn):
    """Records per second since the bar started."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        if not elapsed:
            return Text("")
        return Text(f"{task.completed / elapsed:,.0f} records/s")


class Estimate(ProgressColumn):
    """Percentage and time left, against the source's estimate of the run's records (shown
    only while the run has one: a percentage of a guess is no percentage)."""

    def render(self, task: Task) -> Text:
        if not task.fields.get("estimated") or task.total is None or task.finished:
            return Text("")
        left = task.time_remaining
        eta = "-:--:--" if left is None else str(timedelta(seconds=round(left)))
        return Text(f"{min(task.percentage, 100):.0f}% of ~{task.total:,.0f}, ETA {eta}")


def _records_progress() -> Progress:
    return Progress(
        SpinnerColumn(finished_text="✓"),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} records"),
        RecordRate(),
        TimeElapsedColumn(),
        Estimate(),
        console=err,
    )


def _records(execution: Execution) -> int:
    if execution.progress is not None:
        return execution.progress.processed
    return execution.latest.record_count or 0


def _estimate(execution: Execution) -> int | None:
    return execution.progress.estimated_total if execution.progress is not None else None


def _follow(c: Client, execution: Execution) -> Execution:
    """Wait with a live bar; Ctrl-C asks whether to cancel the run (else keeps following)."""
    with _records_progress() as progress:
        task = progress.add_task(execution.latest_status, total=None)

        def update(e: Execution) -> None:
            progress.update(task, description=e.latest_status, completed=_records(e))
            if (estimate := _estimate(e)) is not None:
                progress.update(task, total=max(estimate, 1), estimated=True)
            if e.done:
                done = _records(e)
                progress.update(task, total=max(done, 1), completed=done)

        while True:
            try:
                return c.executions.wait(execution, on_progress=update)
            except KeyboardInterrupt:
                progress.stop()
                if Confirm.ask(f"cancel execution {execution.id}?", console=err, default=False):
                    c.executions.cancel(execution)
                    err.print(f"cancelling {execution.id}")
                progress.start()


def _finish(c: Client, execution: Execution, download: Path | None, as_json: bool) -> None:
    """The outcome: printed, files fetched; exit 1 unless the run completed."""
    if as_json:
        print_json(execution)
    else:
        latest = execution.latest
        out.print(
            f"{execution.id}: {execution.latest_status}, {latest.record_count or 0} records",
            markup=False,
            highlight=False,
        )
    if execution.latest_status == "CANCELLED":
        raise typer.Exit(EXIT_FAILED)
    if download is not None and execution.latest_status == "COMPLETED":
        download.mkdir(parents=True, exist_ok=True)
        for path in _download(c, execution, None, None, download):
            err.print(f"saved {path}", markup=False, highlight=False)


def _download(
    c: Client, execution: Execution, run: int | None, sub_extract: str | None, to: Path | None
) -> list[Path]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
    )
    tasks: dict[str, TaskID] = {}
    with Progress(*columns, console=err) as progress:

        def update(name: str, done: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=total)
            progress.update(tasks[name], completed=done)

        return c.executions.download(
            execution, run=run, sub_extract=sub_extract, to=to, on_progress=update
        )


def _rows(path: Path | None) -> list[dict[str, Any]] | None:
    if path is None:
        return None
    rows = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(rows, list):
        raise typer.BadParameter("a JSON list of row objects", param_hint="--rows-file")
    return rows


@remote
def run(
    config_id: str = typer.Argument(..., help="the configuration to trigger"),
    date_from: str | None = typer.Option(None, "--date-from", help="inclusive date or timestamp"),
    date_to: str | None = typer.Option(None, "--date-to", help="inclusive date or timestamp"),
    where: str | None = typer.Option(None, "--where", help="SQL condition over the fields"),
    only_new: bool | None = typer.Option(None, "--only-new/--all-records"),
    rows_file: Path | None = typer.Option(None, "--rows-file", help="JSON list of rows by key"),
    idempotency_key: str | None = typer.Option(None, "--idempotency-key"),
    wait: bool = typer.Option(False, "--wait", help="follow it to the end with a progress bar"),
    download: Path | None = typer.Option(None, "--download", help="then save its files here"),
    as_json: bool = JsonOption,
) -> None:
    """Trigger a configuration; --wait follows the run (exit 1 unless it completes)."""
    with client() as c:
        execution = c.configurations.trigger(
            config_id,
            date_from=date_from,
            date_to=date_to,
            where=where,
            only_new=only_new,
            rows=_rows(rows_file),
            idempotency_key=idempotency_key,
        )
        if not (wait or download):
            show(execution, as_json)
            return
        _finish(c, _follow(c, execution), download, as_json)


def _execution(c: Client, execution_id: str, config: str | None) -> Execution:
    if config is None:
        return c.executions.find(execution_id)
    return c.executions.get(execution_id, config)


@executions_app.command("list")
@remote
def executions_list(config_id: str, as_json: bool = JsonOption) -> None:
    with client() as c:
        items = c.executions.list(config_id, limit=200).data
    if as_json:
        print_json(items)
        return
    print_table(
        items,
        [
            ("ID", lambda e: e.id),
            ("STATUS", lambda e: e.latest_status),
            ("RECORDS", lambda e: e.latest_run_record_count),
            ("RUNS", lambda e: e.total_runs),
            ("COMPLETED", lambda e: e.latest_completed_at),
        ],
    )


@executions_app.command("show")
@remote
def executions_show(
    execution_id: str, config: str | None = ConfigOption, as_json: bool = JsonOption
) -> None:
    with client() as c:
        execution = _execution(c, execution_id, config)
    if as_json:
        print_json(execution)
        return
    out.print(
        f"{execution.id}  {execution.extract_configuration_name}  {execution.latest_status}",
        markup=False,
        highlight=False,
    )
    print_table(
        execution.runs,
        [
            ("RUN", lambda r: r.run),
            ("STATUS", lambda r: r.status),
            ("RECORDS", lambda r: r.record_count),
            ("FILE", lambda r: r.file.name if r.file else None),
            ("ERROR", lambda r: r.error_message),
        ],
    )


@executions_app.command("rerun")
@remote
def executions_rerun(
    execution_id: str,
    config: str | None = ConfigOption,
    wait: bool = typer.Option(False, "--wait"),
    as_json: bool = JsonOption,
) -> None:
    with client() as c:
        execution = c.executions.rerun(_execution(c, execution_id, config))
        if wait:
            _finish(c, _follow(c, execution), None, as_json)
        else:
            show(execution, as_json)


@executions_app.command("cancel")
@remote
def executions_cancel(
    execution_id: str, config: str | None = ConfigOption, as_json: bool = JsonOption
) -> None:
    with client() as c:
        show(c.executions.cancel(_execution(c, execution_id, config)), as_json)


@executions_app.command("watch")
@remote
def executions_watch(
    execution_id: str, config: str | None = ConfigOption, as_json: bool = JsonOption
) -> None:
    """Follow a running execution to its end with a progress bar."""
    with client() as c:
        _finish(c, _follow(c, _execution(c, execution_id, config)), None, as_json)


@remote
def download(
    execution_id: str,
    config: str | None = ConfigOption,
    run: int | None = typer.Option(None, "--run", min=1, help="run number (default: latest)"),
    sub_extract: str | None = typer.Option(None, "--sub-extract", help="one part of a split run"),
    output: Path | None = typer.Option(None, "-o", "--output", help="file or directory"),
) -> None:
    """Save a run's verified file(s), resuming a broken transfer."""
    with client() as c:
        execution = _execution(c, execution_id, config)
        for path in _download(c, execution, run, sub_extract, output):
            out.print(str(path), markup=False, highlight=False)
