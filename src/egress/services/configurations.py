"""Validating extraction configurations against their template before they are stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from egress.container import Container
from egress.db.configurations import ConfigurationRecord
from egress.domain.errors import Invalid, NotFound
from egress.domain.incremental import lag_seconds
from egress.domain.naming import normalize_destination_path, validate_pattern
from egress.domain.options import date_range
from egress.domain.plan import select_fields
from egress.query.where import parse_where


def validated_values(c: Container, workspace_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """Check a full set of configuration values; returns them ready to store."""
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
        if destination.get("mode") == "upsert" and not template.primary_key:
            raise Invalid.at(
                ("body", "destination", "mode"),
                "upsert merges by primary key and the template has none",
            )
        if split_by is not None:
            raise Invalid.at(("body", "splitBy"), "is only for storage destinations")
    lag = lag_seconds(values.get("incremental_lag"), ("body", "incrementalLag"))
    return {**values, "destination": destination, "incremental_lag": lag}


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
    return c.configurations.update(workspace_id, cfg_id, validated_values(c, workspace_id, merged))


def delete(c: Container, workspace_id: str, cfg_id: str) -> None:
    for key in c.configurations.delete(workspace_id, cfg_id):
        c.storage.delete(key)
