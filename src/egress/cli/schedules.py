"""``egress schedules``: a configuration's schedules (cron in a time zone), one at a time."""

from __future__ import annotations

import typer

from egress.cli.remote import JsonOption, client, out, print_json, print_table, remote, show

schedules_app = typer.Typer(help="Schedules of a configuration.", no_args_is_help=True)


@schedules_app.command("add")
@remote
def schedules_add(
    config_id: str,
    cron: str = typer.Argument(..., help='five fields ("0 2 * * *") or a macro (@daily)'),
    timezone: str = typer.Option("UTC", "--timezone", "--tz", help="IANA name"),
    date_window: str | None = typer.Option(
        None, "--date-window", help="previousHour, previousDay, previousWeek or previousMonth"
    ),
    disabled: bool = typer.Option(False, "--disabled", help="add it switched off"),
    as_json: bool = JsonOption,
) -> None:
    with client() as c:
        added = c.schedules.add(
            config_id, cron, timezone=timezone, enabled=not disabled, date_window=date_window
        )
    show(added, as_json)


@schedules_app.command("list")
@remote
def schedules_list(config_id: str, as_json: bool = JsonOption) -> None:
    with client() as c:
        items = c.schedules.list(config_id)
    if as_json:
        print_json(items)
        return
    print_table(
        items,
        [
            ("ID", lambda s: s.id),
            ("CRON", lambda s: s.cron),
            ("TIMEZONE", lambda s: s.timezone),
            ("ENABLED", lambda s: "yes" if s.enabled else "no"),
            ("WINDOW", lambda s: s.date_window),
            ("NEXT RUN (LOCAL)", lambda s: s.next_run_at_local),
        ],
    )


@schedules_app.command("remove")
@remote
def schedules_remove(config_id: str, schedule_id: str) -> None:
    with client() as c:
        c.schedules.remove(config_id, schedule_id)
    out.print(f"removed {schedule_id}", markup=False, highlight=False)


@schedules_app.command("preview")
@remote
def schedules_preview(
    config_id: str,
    schedule_id: str,
    count: int = typer.Option(5, "--count", "-n", min=1, max=100),
    as_json: bool = JsonOption,
) -> None:
    """The next fire times, in UTC and in the schedule's time zone."""
    with client() as c:
        times = c.schedules.preview(config_id, schedule_id, count=count)
    if as_json:
        print_json(times)
        return
    print_table(times, [("UTC", lambda t: t.at), ("LOCAL", lambda t: t.at_local)])
