"""Validating extraction configurations against their template before they are stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from egress.db.audit import AuditHook
from egress.db.configurations import ConfigurationRecord as ConfigurationRecord
from egress.db.configurations import ConfigurationRepo
from egress.db.connections import ConnectionRepo
from egress.db.data_tables import DataTableRepo
from egress.db.paging import Page
from egress.db.schedules import ScheduleRecord as ScheduleRecord
from egress.db.schedules import ScheduleRepo
from egress.db.templates import TemplateRecord, TemplateRepo
from egress.domain import audit as a
from egress.domain.clock import Clock, new_id
from egress.domain.configuration import (
    REQUIRED,
    SETTABLE,
    format_for,
    is_active,
    params_problem,
)
from egress.domain.data_tables import (
    APPEND,
    SYSTEM_COLUMNS,
    UPSERT,
    Loading,
    case_clash,
    loading_conflict,
    reserved_column,
)
from egress.domain.errors import Conflict, Forbidden, Invalid, NotFound
from egress.domain.identity import ADMIN, Principal
from egress.domain.incremental import lag_seconds
from egress.domain.naming import normalize_destination_path, validate_pattern
from egress.domain.options import date_range
from egress.domain.paging import PageRequest
from egress.domain.plan import select_fields
from egress.domain.schedules import (
    check_cron,
    check_timezone,
    next_fire,
    parse_day,
    sync_status,
    upcoming,
)
from egress.domain.spec import POSTGRES_DIALECT, postgres_dialect_problem
from egress.domain.split import split_field_problem
from egress.domain.status import ConfigStatus
from egress.query.conditions import Condition, compile_conditions
from egress.query.where import parse_where
from egress.services.audit import AuditService
from egress.storage import Storage


class ConfigurationService:
    def __init__(
        self,
        configurations: ConfigurationRepo,
        templates: TemplateRepo,
        connections: ConnectionRepo,
        data_tables: DataTableRepo,
        storage: Storage,
        schedules: ScheduleRepo,
        clock: Clock,
        schedules_limit: int,
        audit: AuditService,
        max_parallelism: int = 1,
        warehouse: str = "sqlite",
    ) -> None:
        """``warehouse``: the database data tables are loaded into (``sqlite``, ``postgresql``)."""
        self._configurations = configurations
        self._templates = templates
        self._connections = connections
        self._data_tables = data_tables
        self._storage = storage
        self._schedules = schedules
        self._clock = clock
        self._schedules_limit = schedules_limit
        self._audit = audit
        self._max_parallelism = max_parallelism
        self._warehouse = warehouse

    def _audit_hook(
        self,
        action: str,
        workspace_id: str,
        by: Principal | None,
        detail: dict[str, Any] | None = None,
    ) -> AuditHook:
        return self._audit.hook(
            action, "configuration", by=by, workspace_id=workspace_id, detail=detail
        )

    def get(self, workspace_id: str, cfg_id: str) -> ConfigurationRecord:
        return self._configurations.get(workspace_id, cfg_id)

    def list_page(
        self, workspace_id: str, status: ConfigStatus | None, page: PageRequest
    ) -> Page[ConfigurationRecord]:
        return self._configurations.list_page(workspace_id, status, page)

    def create(
        self, workspace_id: str, values: dict[str, Any], by: Principal | None = None
    ) -> ConfigurationRecord:
        """``by`` is the caller: only an admin may raise ``schedulesLimit``."""
        values = self.validated(workspace_id, values)
        wanted = self._schedules_of(values, None, by)
        values = _stored(values)
        return self._configurations.create(
            workspace_id, values, wanted, self._audit_hook(a.CONFIGURATION_CREATE, workspace_id, by)
        )

    def update(
        self,
        workspace_id: str,
        cfg_id: str,
        changes: dict[str, Any],
        by: Principal | None = None,
    ) -> ConfigurationRecord:
        """PUT and PATCH alike: merge the changes, re-validate the whole, store. Schedules are
        matched by ``id`` (one without is new), so an existing one keeps its state."""
        current = self._configurations.get(workspace_id, cfg_id)
        if "filter" in changes and "conditions" not in changes:
            changes = {**changes, "conditions": None}  # a whereClause replaces the conditions
        elif "conditions" in changes and "filter" not in changes:
            changes = {**changes, "filter": None}  # compiled again below, or none is left
        merged = {**{key: getattr(current, key) for key in SETTABLE}, **changes}
        if "schedules" not in changes:
            merged["schedules"] = [_as_values(s) for s in current.schedules]
        values = self.validated(workspace_id, merged, cfg_id)
        wanted = self._schedules_of(values, current, by)
        values = _stored(values)
        if current.sync_historical_data is not None and values["sync_historical_data"] is None:
            self._schedules.cancel_queued(workspace_id, cfg_id, self._clock(), backfill_only=True)
        return self._configurations.update(
            workspace_id,
            cfg_id,
            values,
            wanted,
            self._audit_hook(
                a.CONFIGURATION_UPDATE, workspace_id, by, {"changed": sorted(changes)}
            ),
        )

    def patch(
        self, workspace_id: str, cfg_id: str, changes: dict[str, Any], by: Principal | None = None
    ) -> ConfigurationRecord:
        """Change only the values given; one that a configuration cannot be without (a name,
        a format, its schedules list, …) may not be given as null."""
        for key in (*REQUIRED, "schedules"):
            if key in changes and changes[key] is None:
                raise Invalid.at(("body", key), "must not be null")
        return self.update(workspace_id, cfg_id, changes, by=by)

    def submit(
        self, workspace_id: str, cfg_id: str, by: Principal | None = None
    ) -> ConfigurationRecord:
        current = self._configurations.get(workspace_id, cfg_id)
        # Slots from before the submission are not owed: schedules start from now.
        return self._configurations.update(
            workspace_id,
            cfg_id,
            {"status": ConfigStatus.SUBMITTED.value},
            self._restarted(current.schedules),
            self._audit_hook(a.CONFIGURATION_SUBMIT, workspace_id, by),
        )

    def pause(
        self, workspace_id: str, cfg_id: str, cancel_queued: bool, by: Principal | None = None
    ) -> ConfigurationRecord:
        """Stop schedule and backfill firing (manual triggers still run); with
        ``cancel_queued`` also cancel their queued runs."""
        self._configurations.get(workspace_id, cfg_id)
        if cancel_queued:
            self._schedules.cancel_queued(workspace_id, cfg_id, self._clock(), backfill_only=False)
        detail = {"changed": ["paused"], "cancelQueued": cancel_queued}
        hook = self._audit_hook(a.CONFIGURATION_UPDATE, workspace_id, by, detail)
        return self._configurations.update(workspace_id, cfg_id, {"paused": True}, None, hook)

    def resume(
        self, workspace_id: str, cfg_id: str, by: Principal | None = None
    ) -> ConfigurationRecord:
        """Fire again from the next slot on: the paused slots are not replayed, but the next
        window starts where the last one ended."""
        current = self._configurations.get(workspace_id, cfg_id)
        hook = self._audit_hook(a.CONFIGURATION_UPDATE, workspace_id, by, {"changed": ["paused"]})
        return self._configurations.update(
            workspace_id, cfg_id, {"paused": False}, self._restarted(current.schedules), hook
        )

    def _restarted(self, schedules: list[ScheduleRecord]) -> list[ScheduleRecord]:
        now = self._clock()
        return [
            ScheduleRecord(
                **{**_as_values(s), "next_due_at": _first_due(s.cron, s.timezone, s.enabled, now)}
            )
            for s in schedules
        ]

    def _schedules_of(
        self, values: dict[str, Any], current: ConfigurationRecord | None, by: Principal | None
    ) -> list[ScheduleRecord]:
        """The schedules in ``values``, checked (cron, zone, limit, ids), each with its next
        slot: kept when its cron, zone and enabled flag did not change, else from now."""
        limit = values.get("schedules_limit")
        before = self._schedules_limit if current is None else self.schedules_limit_of(current)
        role = None if by is None else by.role
        if limit is not None and limit > before and role != ADMIN:
            raise Forbidden(
                f"raising schedulesLimit above {before} needs the admin role; "
                f"this token's role is {role!r}"
            )
        limit = self._schedules_limit if limit is None else limit
        items: list[dict[str, Any]] = values.get("schedules") or []
        if len(items) > limit:
            raise Invalid.at(
                ("body", "schedules"),
                f"has {len(items)} schedules; the limit (schedulesLimit) is {limit}",
            )
        known = {s.id: s for s in current.schedules} if current else {}
        now = self._clock()
        out: list[ScheduleRecord] = []
        for i, item in enumerate(items):
            loc = ("body", "schedules", i)
            sid = item.get("id")
            if sid is not None and sid not in known:
                raise Invalid.at(
                    (*loc, "id"), f"unknown schedule {sid!r} (leave id out for a new one)"
                )
            if sid is not None and sid in {s.id for s in out}:
                raise Invalid.at((*loc, "id"), f"schedule {sid!r} is listed twice")
            cron = check_cron(item["cron"], (*loc, "cron"))
            # PATCH passes items as sent: an item without a timezone is UTC, as everywhere
            # (it was a KeyError, 500, before 2026-12-04).
            zone = item.get("timezone") or "UTC"
            check_timezone(zone, (*loc, "timezone"))
            enabled = bool(item.get("enabled", True))
            old = known.get(sid) if sid else None
            same = old is not None and (old.cron, old.timezone, old.enabled) == (
                cron,
                zone,
                enabled,
            )
            out.append(
                ScheduleRecord(
                    id=sid or new_id(),
                    cron=cron,
                    timezone=zone,
                    enabled=enabled,
                    date_window=item.get("date_window"),
                    next_due_at=old.next_due_at
                    if same and old is not None
                    else _first_due(cron, zone, enabled, now),
                )
            )
        return out

    def schedules_limit_of(self, r: ConfigurationRecord) -> int:
        """How many schedules ``r`` may have: its own limit, else EGRESS_SCHEDULES_LIMIT."""
        return self._schedules_limit if r.schedules_limit is None else r.schedules_limit

    def delete(self, workspace_id: str, cfg_id: str, by: Principal | None = None) -> None:
        audit = self._audit_hook(a.CONFIGURATION_DELETE, workspace_id, by)
        for key in self._configurations.delete(workspace_id, cfg_id, audit):
            self._storage.delete(key)

    def validated(
        self, workspace_id: str, values: dict[str, Any], cfg_id: str | None = None
    ) -> dict[str, Any]:
        """Check a full set of configuration values (of configuration ``cfg_id`` when it exists
        already); returns them ready to store."""
        try:
            template = self._templates.get(workspace_id, values["template_id"])
        except NotFound as exc:
            raise Invalid.at(
                ("body", "template_id"), f"unknown template {values['template_id']!r}"
            ) from exc
        select_fields(template.fields, values["fields"])
        values = {**values, "format": format_for(values.get("format"), values["destination"])}
        if values["format"] is None:
            raise Invalid.at(("body", "format"), "a storage destination needs a format")
        if values["format"] == "parquet" and values["compression"] != "none":
            raise Invalid.at(
                ("body", "compression"),
                "parquet files are compressed internally (zstd); compression must be 'none'",
            )
        pattern = values["file_name_pattern"]
        if pattern is not None:
            validate_pattern(pattern)
        if values.get("csv_dialect") == POSTGRES_DIALECT:
            kind = self._connections.get(workspace_id, template.connection_id).type
            problem = postgres_dialect_problem(kind, values)
            if problem:
                raise Invalid.at(("body", "csv_dialect"), problem)
        split_by = values.get("split_by")
        if split_by is not None:
            split_field = template.field(split_by)
            if split_field is None:
                raise Invalid.at(
                    ("body", "split_by"),
                    f"unknown field {split_by!r}; the template has: "
                    f"{', '.join(f.name for f in template.fields)}",
                )
            if (problem := split_field_problem(split_field.type)) is not None:
                raise Invalid.at(("body", "split_by"), f"cannot split by {split_by!r}: {problem}")
            if pattern is not None and "{configurationName}" not in pattern:
                raise Invalid.at(
                    ("body", "file_name_pattern"),
                    "with splitBy, the pattern must contain {configurationName}: "
                    "each part's value is added after it",
                )
        problem = params_problem(values.get("additional_params"))
        if problem:
            raise Invalid.at(("body", "additional_params"), problem)
        if values.get("conditions") is not None:
            conditions = [Condition(**c) for c in values["conditions"]]
            values = {
                **values,
                "filter": compile_conditions(conditions, template.fields),
            }
        if values.get("filter") is not None:
            parse_where(values["filter"], template.fields)
        if values.get("extract_only_new") and template.cursor_field is None:
            raise Invalid.at(("body", "extract_only_new"), "the template has no cursorField")
        date_range(template.date_field, values.get("date_from"), values.get("date_to"))
        start: datetime | None = values["start_date"]
        end: datetime | None = values["end_date"]
        if start is not None and end is not None and end <= start:
            raise Invalid.at(("body", "end_date"), "must be after startDate")
        destination = dict(values["destination"])
        if destination["type"] == "storage":
            destination["path"] = normalize_destination_path(destination.get("path", ""))
        else:
            if destination.get("mode") == UPSERT and not template.primary_key:
                raise Invalid.at(
                    ("body", "destination", "mode"),
                    "upsert merges by primary key and the template has none",
                )
            if split_by is not None:
                raise Invalid.at(("body", "split_by"), "is only for storage destinations")
            self._check_loading(
                workspace_id,
                template,
                values["fields"],
                destination,
                cfg_id,
                bool(values.get("system_columns")),
            )
        parallelism = values.get("parallelism", 1)
        if parallelism > self._max_parallelism:
            raise Invalid.at(
                ("body", "parallelism"),
                f"at most {self._max_parallelism} (EGRESS_MAX_PARALLELISM)",
            )
        lag = lag_seconds(values.get("incremental_lag"), ("body", "incremental_lag"))
        for i, item in enumerate(values.get("schedules") or []):
            if item.get("date_window") is not None and template.date_field is None:
                raise Invalid.at(
                    ("body", "schedules", i, "date_window"),
                    "the template has no dateField, so runs cannot take a date window",
                )
        since = values.get("sync_historical_data")
        if since is not None:
            loc = ("body", "sync_historical_data")
            if parse_day(since, loc) >= self._clock().date():
                raise Invalid.at(loc, "must be a day before today (the backfill ends today)")
            if template.date_field is None:
                raise Invalid.at(loc, "the template has no dateField, so it cannot backfill")
        return {**values, "destination": destination, "incremental_lag": lag}

    def schedule(
        self, workspace_id: str, cfg_id: str, schedule_id: str
    ) -> tuple[ConfigurationRecord, ScheduleRecord]:
        """The configuration and its schedule ``schedule_id``."""
        cfg = self._configurations.get(workspace_id, cfg_id)
        return cfg, _find(cfg, schedule_id)

    def preview(
        self, workspace_id: str, cfg_id: str, schedule_id: str, count: int
    ) -> tuple[ScheduleRecord, list[datetime]]:
        """The schedule and its next ``count`` fire times after now."""
        _, found = self.schedule(workspace_id, cfg_id, schedule_id)
        zone = check_timezone(found.timezone, ("timezone",))
        return found, upcoming(found.cron, zone, self._clock(), count)

    def add_schedule(
        self, workspace_id: str, cfg_id: str, item: dict[str, Any], by: Principal | None = None
    ) -> tuple[ConfigurationRecord, ScheduleRecord]:
        cfg = self._configurations.get(workspace_id, cfg_id)
        item = {k: v for k, v in item.items() if k != "id"}
        items = [*(_as_values(s) for s in cfg.schedules), item]
        stored = self.update(workspace_id, cfg_id, {"schedules": items}, by)
        return stored, stored.schedules[-1]

    def change_schedule(
        self,
        workspace_id: str,
        cfg_id: str,
        schedule_id: str,
        changes: dict[str, Any],
        by: Principal | None = None,
    ) -> tuple[ConfigurationRecord, ScheduleRecord]:
        cfg, _ = self.schedule(workspace_id, cfg_id, schedule_id)
        items = [
            {**_as_values(s), **changes, "id": s.id} if s.id == schedule_id else _as_values(s)
            for s in cfg.schedules
        ]
        stored = self.update(workspace_id, cfg_id, {"schedules": items}, by)
        return stored, _find(stored, schedule_id)

    def delete_schedule(
        self, workspace_id: str, cfg_id: str, schedule_id: str, by: Principal | None = None
    ) -> None:
        cfg, _ = self.schedule(workspace_id, cfg_id, schedule_id)
        items = [_as_values(s) for s in cfg.schedules if s.id != schedule_id]
        self.update(workspace_id, cfg_id, {"schedules": items}, by)

    def _check_loading(
        self,
        workspace_id: str,
        template: TemplateRecord,
        fields: list[str] | None,
        destination: dict[str, Any],
        cfg_id: str | None,
        system_columns: bool,
    ) -> None:
        """An upsert delivers its whole key, the warehouse can hold its columns apart (those
        read and the system columns), and a data table is loaded as it was created (by its
        catalogue entry, or before its first load by the configurations that already target
        it)."""
        mode = destination.get("mode", APPEND)
        key = template.primary_key if mode == UPSERT else []
        missing = [k for k in key if fields is not None and k not in fields]
        if missing:
            raise Invalid.at(
                ("body", "fields"),
                f"an upsert merges by the key ({', '.join(key)}); fields must include "
                f"{', '.join(map(repr, missing))}",
            )
        # A clash with a column the table has already fails the run (the warehouse, not the
        # catalogue, knows which columns a table has).
        read = [f.name for f in template.fields] if fields is None else fields
        columns = [*read, *(c.name for c in SYSTEM_COLUMNS if system_columns)]
        if clash := case_clash(columns, self._warehouse):
            raise Invalid.at(("body", "fields"), clash)
        if reserved := reserved_column(columns, self._warehouse):
            raise Invalid.at(("body", "fields"), reserved)
        name = destination["dataTable"]
        wanted = Loading(mode, key, template.id, template.name)
        table = self._data_tables.find(workspace_id, name)
        if table is not None:
            existing = Loading(
                table.mode,
                table.primary_key,
                table.template_id,
                self._template_name(workspace_id, table.template_id),
            )
            if conflict := loading_conflict(name, existing, wanted):
                raise Conflict(conflict)
        for other in self._data_tables.loading_configurations(workspace_id, name):
            if other["id"] == cfg_id:
                continue
            other_template = self._templates.get(workspace_id, other["templateId"])
            other_key = other_template.primary_key if other["mode"] == UPSERT else []
            existing = Loading(other["mode"], other_key, other_template.id, other_template.name)
            if conflict := loading_conflict(name, existing, wanted, other["name"]):
                raise Conflict(conflict)

    def _template_name(self, workspace_id: str, template_id: str | None) -> str:
        """For messages: the template's name, or its id once it is gone."""
        if template_id is None:
            return ""
        try:
            return self._templates.get(workspace_id, template_id).name
        except NotFound:
            return template_id


def sync_status_of(r: ConfigurationRecord, now: datetime) -> str:
    """Seed 001's one-word status of a configuration now (``syncStatus``; the rule is
    ``domain.schedules.sync_status``), shown by the native API and the extracts face."""
    return sync_status(
        active=is_active(r.status, r.start_date, r.end_date, now),
        paused=r.paused,
        running=r.sync.running,
        last_finished_failed=r.sync.failed,
    )


def _find(cfg: ConfigurationRecord, schedule_id: str) -> ScheduleRecord:
    found = next((s for s in cfg.schedules if s.id == schedule_id), None)
    if found is None:
        raise NotFound(f"schedule {schedule_id} not found")
    return found


def _stored(values: dict[str, Any]) -> dict[str, Any]:
    """The configuration's own columns (its schedules are rows of their own)."""
    return {k: v for k, v in values.items() if k != "schedules"}


def _as_values(s: ScheduleRecord) -> dict[str, Any]:
    """A stored schedule as the values a request gives (its state left out)."""
    return {
        "id": s.id,
        "cron": s.cron,
        "timezone": s.timezone,
        "enabled": s.enabled,
        "date_window": s.date_window,
    }


def _first_due(cron: str, zone: str, enabled: bool, now: datetime) -> datetime | None:
    """The first slot after ``now`` (a disabled schedule has none)."""
    if not enabled:
        return None
    return next_fire(cron, check_timezone(zone, ("timezone",)), now)
