"""Validating extraction configurations against their template before they are stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from egress.container import Container
from egress.db.configurations import ConfigurationRecord
from egress.db.templates import TemplateRecord
from egress.domain.data_tables import APPEND, UPSERT, Loading, loading_conflict
from egress.domain.errors import Conflict, Invalid, NotFound
from egress.domain.incremental import lag_seconds
from egress.domain.naming import normalize_destination_path, validate_pattern
from egress.domain.options import date_range
from egress.domain.plan import select_fields
from egress.query.where import parse_where


def validated_values(
    c: Container, workspace_id: str, values: dict[str, Any], cfg_id: str | None = None
) -> dict[str, Any]:
    """Check a full set of configuration values (of configuration ``cfg_id`` when it exists
    already); returns them ready to store."""
    try:
        template = c.templates.get(workspace_id, values["template_id"])
    except NotFound as exc:
        raise Invalid.at(
            ("body", "templateId"), f"unknown template {values['template_id']!r}"
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
                ("body", "splitBy"),
                f"unknown field {split_by!r}; the template has: "
                f"{', '.join(f.name for f in template.fields)}",
            )
        if pattern is not None and "{configurationName}" not in pattern:
            raise Invalid.at(
                ("body", "fileNamePattern"),
                "with splitBy, the pattern must contain {configurationName}: "
                "each part's value is added after it",
            )
    if values.get("filter") is not None:
        parse_where(values["filter"], [f.name for f in template.fields])
    if values.get("extract_only_new") and template.cursor_field is None:
        raise Invalid.at(("body", "extractOnlyNew"), "the template has no cursorField")
    date_range(template.date_field, values.get("date_from"), values.get("date_to"))
    start: datetime | None = values["start_date"]
    end: datetime | None = values["end_date"]
    if start is not None and end is not None and end <= start:
        raise Invalid.at(("body", "endDate"), "must be after startDate")
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
            raise Invalid.at(("body", "splitBy"), "is only for storage destinations")
        _check_loading(c, workspace_id, template, values["fields"], destination, cfg_id)
    lag = lag_seconds(values.get("incremental_lag"), ("body", "incrementalLag"))
    return {**values, "destination": destination, "incremental_lag": lag}


def _check_loading(
    c: Container,
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
    table = c.data_tables.find(workspace_id, name)
    if table is not None:
        existing = Loading(
            table.mode,
            table.primary_key,
            table.template_id,
            _template_name(c, workspace_id, table.template_id),
        )
        if conflict := loading_conflict(name, existing, wanted):
            raise Conflict(conflict)
    for other in c.data_tables.loading_configurations(workspace_id, name):
        if other["id"] == cfg_id:
            continue
        other_template = c.templates.get(workspace_id, other["templateId"])
        other_key = other_template.primary_key if other["mode"] == UPSERT else []
        existing = Loading(other["mode"], other_key, other_template.id, other_template.name)
        if conflict := loading_conflict(name, existing, wanted, other["name"]):
            raise Conflict(conflict)


def _template_name(c: Container, workspace_id: str, template_id: str | None) -> str:
    """For messages: the template's name, or its id once it is gone."""
    if template_id is None:
        return ""
    try:
        return c.templates.get(workspace_id, template_id).name
    except NotFound:
        return template_id


def create(c: Container, workspace_id: str, values: dict[str, Any]) -> ConfigurationRecord:
    return c.configurations.create(workspace_id, validated_values(c, workspace_id, values))


def update(
    c: Container, workspace_id: str, cfg_id: str, changes: dict[str, Any]
) -> ConfigurationRecord:
    """PUT and PATCH alike: merge the changes, re-validate the whole, store."""
    current = c.configurations.get(workspace_id, cfg_id)
    merged = {
        "name": current.name,
        "template_id": current.template_id,
        "fields": current.fields,
        "format": current.format,
        "compression": current.compression,
        "destination": current.destination,
        "file_name_pattern": current.file_name_pattern,
        "split_by": current.split_by,
        "filter": current.filter,
        "extract_only_new": current.extract_only_new,
        "incremental_lag": current.incremental_lag,
        "date_from": current.date_from,
        "date_to": current.date_to,
        "start_date": current.start_date,
        "end_date": current.end_date,
        **changes,
    }
    return c.configurations.update(
        workspace_id, cfg_id, validated_values(c, workspace_id, merged, cfg_id)
    )


def delete(c: Container, workspace_id: str, cfg_id: str) -> None:
    for key in c.configurations.delete(workspace_id, cfg_id):
        c.storage.delete(key)
