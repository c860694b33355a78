"""An extraction configuration — the one list of its fields — and its lifecycle rules: active
window and triggerability."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, get_args, get_type_hints

from egress.domain.spec import ConfigurationSnapshot
from egress.domain.status import ConfigStatus


@dataclass(frozen=True, kw_only=True)
class Configuration(ConfigurationSnapshot):
    """An extraction configuration as stored: the part an execution freezes (the snapshot's
    fields: id, name, version, fields, format, compression, destination, file name pattern,
    split-by, account, system columns, parallelism) and the rest. Its fields are listed only
    here and there: the repository reads and writes them by these names, the services
    validate and merge the ones a user sets (``SETTABLE``), and each face's wire shape derives
    from this class (the native ``ConfigurationOut`` is a subclass), so a new field is added
    here and in the table."""

    workspace_id: str
    template_id: str
    filter: str | None  # the default whereClause
    extract_only_new: bool
    incremental_lag: float | None  # seconds; None: the source's default
    date_from: str | None
    date_to: str | None
    watermark: Any
    start_date: datetime | None
    end_date: datetime | None
    status: ConfigStatus
    created_at: datetime
    updated_at: datetime
    # Its structured filter as given (seed 001's ``filters``), compiled into ``filter``; and
    # free-form parameters kept for the client (``additional_params``).
    conditions: list[dict[str, Any]] | None = None
    additional_params: dict[str, Any] | None = None
    # Schedules and backfill: None limit means EGRESS_SCHEDULES_LIMIT; the backfill covers
    # [sync_historical_data, today) in backfill_window windows; paused stops both. (The
    # schedules themselves are rows of their own: see db.configurations.ConfigurationRecord.)
    schedules_limit: int | None = None
    sync_historical_data: str | None = None  # the backfill's first day
    backfill_window: str = "month"
    paused: bool = False

    def snapshot(self) -> ConfigurationSnapshot:
        """The frozen form stored on every execution."""
        kept = {f.name: getattr(self, f.name) for f in fields(ConfigurationSnapshot)}
        return ConfigurationSnapshot(**kept)


# ``additional_params`` is the client's own JSON, kept and shown back in every response about
# the configuration: bounded so those responses can always be written (a value nested a few
# hundred levels deep was stored, then the extract and the workspace's lists on both faces
# answered 500: the serializer's depth limit).
MAX_PARAMS_DEPTH = 32
MAX_PARAMS_BYTES = 64 << 10


def params_problem(value: Any) -> str | None:
    """What is wrong with an ``additional_params`` value (None: nothing); iterative, so no
    depth overflows the check itself."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_PARAMS_DEPTH:
                return f"nests deeper than {MAX_PARAMS_DEPTH} levels"
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_PARAMS_BYTES:
        return f"is larger than {MAX_PARAMS_BYTES} bytes as JSON"
    return None


# The format stored for a data-table destination left without one: nothing is written as a file,
# so none is used (a storage destination must name its own).
DATA_TABLE_FORMAT = "csv"


def format_for(format: str | None, destination: dict[str, Any]) -> str | None:
    """The configuration's format: the one given, or for a data table (no file) the stored
    placeholder; None when a storage destination was given none."""
    if format is not None or destination.get("type") == "storage":
        return format
    return DATA_TABLE_FORMAT


# What Egress keeps about a configuration, as opposed to what its user sets.
KEPT_BY_EGRESS = frozenset(
    {
        "id",
        "workspace_id",
        "watermark",
        "status",
        "version",
        "created_at",
        "updated_at",
        "paused",
    }
)
# What is fixed when a configuration is made (by the seed-001 face): the account it reads and
# whether its loads add the system columns.
FIXED_AT_CREATE = frozenset({"account", "system_columns"})
# The values a user sets, by their logical names: what create takes in full and update merges
# changes into.
SETTABLE = tuple(
    f.name for f in fields(Configuration) if f.name not in KEPT_BY_EGRESS | FIXED_AT_CREATE
)
# The settable values a configuration cannot be without (its type does not admit None).
REQUIRED = tuple(
    name
    for name, hint in get_type_hints(Configuration).items()
    if name in SETTABLE and type(None) not in get_args(hint)
)


def is_active(
    status: ConfigStatus, start: datetime | None, end: datetime | None, now: datetime
) -> bool:
    """Submitted and within its effective dates (start inclusive, end exclusive)."""
    if status is not ConfigStatus.SUBMITTED:
        return False
    if start is not None and now < start:
        return False
    return not (end is not None and now >= end)


def trigger_blocker(
    status: ConfigStatus, start: datetime | None, end: datetime | None, now: datetime
) -> str | None:
    """Why a trigger is refused, or None: only an active configuration runs."""
    if status is ConfigStatus.DRAFT:
        return "the configuration is a DRAFT; submit it before triggering"
    if start is not None and now < start:
        return f"the configuration starts at its startDate ({start.isoformat()}); it cannot run yet"
    if end is not None and now >= end:
        return f"the configuration reached its endDate ({end.isoformat()}); it can no longer run"
    return None


def loading_values(
    name: str, template_id: str, fields: list[str] | None, destination: dict[str, Any]
) -> dict[str, Any]:
    """A new configuration's values as a seed face makes one: ``name`` reading ``fields`` of
    ``template_id`` into ``destination``, every other setting at its default (add to it)."""
    return {
        "name": name,
        "template_id": template_id,
        "fields": fields,
        "format": DATA_TABLE_FORMAT,
        "compression": "none",
        "destination": destination,
        "file_name_pattern": None,
        "split_by": None,
        "filter": None,
        "extract_only_new": False,
        "incremental_lag": None,
        "date_from": None,
        "date_to": None,
        "start_date": None,
        "end_date": None,
    }
