"""A configuration's schedules one at a time, and the preview of their next fire times."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response

from egress.api.native.presenters import fires, schedule_out
from egress.api.native.schemas import (
    FireTimeOut,
    PreviewOut,
    ScheduleCreate,
    ScheduleOut,
    SchedulePatch,
)
from egress.api.wiring import Editor, Now, ServicesDep, Viewer
from egress.domain.errors import Invalid
from egress.domain.schedules import local_iso, utc_iso

PREFIX = "/api/v1/extraction-configurations/{config_id}/schedules"
router = APIRouter(prefix=PREFIX, tags=["schedules"])
# A preview shows at most this many fire times.
MAX_PREVIEW = 100


@router.get("", response_model=list[ScheduleOut])
def list_schedules(config_id: str, s: ServicesDep, p: Viewer, now: Now) -> list[ScheduleOut]:
    cfg = s.configurations.get(p.workspace_id, config_id)
    return [schedule_out(x, fires(cfg, now)) for x in cfg.schedules]


@router.post("", status_code=201, response_model=ScheduleOut)
def add_schedule(
    config_id: str, body: ScheduleCreate, s: ServicesDep, p: Editor, now: Now
) -> ScheduleOut:
    cfg, added = s.configurations.add_schedule(p.workspace_id, config_id, body.model_dump(), by=p)
    return schedule_out(added, fires(cfg, now))


@router.get("/{schedule_id}", response_model=ScheduleOut)
def get_schedule(
    config_id: str, schedule_id: str, s: ServicesDep, p: Viewer, now: Now
) -> ScheduleOut:
    cfg, found = s.configurations.schedule(p.workspace_id, config_id, schedule_id)
    return schedule_out(found, fires(cfg, now))


@router.patch("/{schedule_id}", response_model=ScheduleOut)
def patch_schedule(
    config_id: str,
    schedule_id: str,
    body: SchedulePatch,
    s: ServicesDep,
    p: Editor,
    now: Now,
) -> ScheduleOut:
    changes = body.model_dump(exclude_unset=True)
    for key in ("cron", "timezone", "enabled"):
        if key in changes and changes[key] is None:
            raise Invalid.at(("body", key), "must not be null")
    cfg, changed = s.configurations.change_schedule(
        p.workspace_id, config_id, schedule_id, changes, by=p
    )
    return schedule_out(changed, fires(cfg, now))


@router.delete("/{schedule_id}", status_code=204)
def delete_schedule(config_id: str, schedule_id: str, s: ServicesDep, p: Editor) -> Response:
    s.configurations.delete_schedule(p.workspace_id, config_id, schedule_id, by=p)
    return Response(status_code=204)


@router.get("/{schedule_id}/preview", response_model=PreviewOut)
def preview_schedule(
    config_id: str,
    schedule_id: str,
    s: ServicesDep,
    p: Viewer,
    count: Annotated[int, Query(ge=1, le=MAX_PREVIEW)] = 5,
) -> PreviewOut:
    """The next ``count`` fire times from now (whether or not the configuration may fire)."""
    record, times = s.configurations.preview(p.workspace_id, config_id, schedule_id, count)
    zone = ZoneInfo(record.timezone)
    return PreviewOut(data=[FireTimeOut(at=utc_iso(t), at_local=local_iso(t, zone)) for t in times])
