"""Validating extraction configurations against their template before they are stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from egress.db.configurations import ConfigurationRecord as ConfigurationRecord
from egress.db.configurations import ConfigurationRepo
from egress.db.data_tables import DataTableRepo
from egress.db.paging import Page
from egress.db.templates import TemplateRecord, TemplateRepo
from egress.domain import audit as a
from egress.domain.audit import AuditObject
from egress.domain.configuration import REQUIRED, SETTABLE
from egress.domain.data_tables import APPEND, UPSERT, Loading, loading_conflict
from egress.domain.errors import Conflict, Invalid, NotFound
from egress.domain.identity import Principal
from egress.domain.incremental import lag_seconds
from egress.domain.naming import normalize_destination_path, validate_pattern
from egress.domain.options import date_range
from egress.domain.paging import PageRequest
from egress.domain.plan import select_fields
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
        data_tables: DataTableRepo,
        storage: Storage,
        audit: AuditService,
    ) -> None:
        self._configurations = configurations
        self._templates = templates
        self._data_tables = data_tables
        self._storage = storage
        self._audit = audit

    def _record(
        self,
        action: str,
        workspace_id: str,
        cfg_id: str,
        by: Principal | None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        self._audit.record(
            action,
            AuditObject("configuration", cfg_id),
            by=by,
            workspace_id=workspace_id,
            detail=detail,
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
        record = self._configurations.create(workspace_id, self.validated(workspace_id, values))
        self._record(a.CONFIGURATION_CREATE, workspace_id, record.id, by)
        return record

    def update(
        self,
        workspace_id: str,
        cfg_id: str,
        changes: dict[str, Any],
        by: Principal | None = None,
    ) -> ConfigurationRecord:
        """PUT and PATCH alike: merge the changes, re-validate the whole, store."""
        current = self._configurations.get(workspace_id, cfg_id)
        if "filter" in changes and "conditions" not in changes:
            changes = {**changes, "conditions": None}  # a whereClause replaces the conditions
        elif "conditions" in changes and "filter" not in changes:
            changes = {**changes, "filter": None}  # compiled again below, or none is left
        merged = {**{key: getattr(current, key) for key in SETTABLE}, **changes}
        record = self._configurations.update(
            workspace_id, cfg_id, self.validated(workspace_id, merged, cfg_id)
        )
        self._record(a.CONFIGURATION_UPDATE, workspace_id, cfg_id, by, {"changed": sorted(changes)})
        return record

    def patch(
        self, workspace_id: str, cfg_id: str, changes: dict[str, Any], by: Principal | None = None
    ) -> ConfigurationRecord:
        """Change only the values given; one that a configuration cannot be without (a name,
        a format, …) may not be given as null."""
        for key in REQUIRED:
            if key in changes and changes[key] is None:
                raise Invalid.at(("body", key), "must not be null")
        return self.update(workspace_id, cfg_id, changes, by=by)

    def submit(
        self, workspace_id: str, cfg_id: str, by: Principal | None = None
    ) -> ConfigurationRecord:
        self._configurations.get(workspace_id, cfg_id)
        record = self._configurations.update(
            workspace_id, cfg_id, {"status": ConfigStatus.SUBMITTED.value}
        )
        self._record(a.CONFIGURATION_SUBMIT, workspace_id, cfg_id, by)
        return record

    def delete(self, workspace_id: str, cfg_id: str, by: Principal | None = None) -> None:
        for key in self._configurations.delete(workspace_id, cfg_id):
            self._storage.delete(key)
        self._record(a.CONFIGURATION_DELETE, workspace_id, cfg_id, by)

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
        if values["format"] == "parquet" and values["compression"] != "none":
            raise Invalid.at(
                ("body", "compression"),
                "parquet files are compressed internally (zstd); compression must be 'none'",
            )
        pattern = values["file_name_pattern"]
        if pattern is not None:
            validate_pattern(pattern)
        split_by = values.get("split_by")
        if split_by is not None:
            if template.field(split_by) is None:
                raise Invalid.at(
                    ("body", "split_by"),
                    f"unknown field {split_by!r}; the template has: "
                    f"{', '.join(f.name for f in template.fields)}",
                )
            if pattern is not None and "{configurationName}" not in pattern:
                raise Invalid.at(
                    ("body", "file_name_pattern"),
                    "with splitBy, the pattern must contain {configurationName}: "
                    "each part's value is added after it",
                )
        if values.get("conditions") is not None:
            conditions = [Condition(**c) for c in values["conditions"]]
            values = {
                **values,
                "filter": compile_conditions(conditions, [f.name for f in template.fields]),
            }
        if values.get("filter") is not None:
            parse_where(values["filter"], [f.name for f in template.fields])
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
            self._check_loading(workspace_id, template, values["fields"], destination, cfg_id)
        lag = lag_seconds(values.get("incremental_lag"), ("body", "incremental_lag"))
        return {**values, "destination": destination, "incremental_lag": lag}

    def _check_loading(
        self,
        workspace_id: str,
        template: TemplateRecord,
        fields: list[str] | None,
        destination: dict[str, Any],
        cfg_id: str | None,
    ) -> None:
        """An upsert delivers its whole key, and a data table is loaded as it was created (by its
        catalogue entry, or before its first load by the configurations that already target it)."""
        mode = destination.get("mode", APPEND)
        key = template.primary_key if mode == UPSERT else []
        missing = [k for k in key if fields is not None and k not in fields]
        if missing:
            raise Invalid.at(
                ("body", "fields"),
                f"an upsert merges by the key ({', '.join(key)}); fields must include "
                f"{', '.join(map(repr, missing))}",
            )
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
