"""/api/v1/extraction-configurations: CRUD and submit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from egress.api.native.presenters import configuration_out
from egress.api.native.routes.common import page_request
from egress.api.native.schemas import (
    ConfigurationCreate,
    ConfigurationOut,
    ConfigurationPatch,
    ListEnvelope,
)
from egress.api.wiring import Editor, Now, ServicesDep, Viewer
from egress.domain.paging import PageRequest
from egress.domain.status import ConfigStatus

router = APIRouter(prefix="/api/v1/extraction-configurations", tags=["extraction configurations"])


def _values(body: ConfigurationCreate | ConfigurationPatch, *, unset: bool) -> dict[str, object]:
    """The body's values by their logical names (the schema's field names); with ``unset``,
    the ones the client left out too (their defaults)."""
    values = body.model_dump(exclude_unset=not unset)
    if body.destination is not None:
        values["destination"] = body.destination.model_dump(by_alias=True)
    if unset:  # left out, it means "no"
        values["extract_only_new"] = bool(body.extract_only_new)
    return values


@router.post("", status_code=201, response_model=ConfigurationOut)
def create_configuration(
    body: ConfigurationCreate, s: ServicesDep, p: Editor, now: Now
) -> ConfigurationOut:
    return configuration_out(
        s.configurations.create(p.workspace_id, _values(body, unset=True), by=p), now
    )


@router.get("", response_model=ListEnvelope[ConfigurationOut])
def list_configurations(
    s: ServicesDep,
    p: Viewer,
    now: Now,
    page: Annotated[PageRequest, Depends(page_request)],
    status: Annotated[ConfigStatus | None, Query()] = None,
) -> ListEnvelope[ConfigurationOut]:
    result = s.configurations.list_page(p.workspace_id, status, page)
    items = [configuration_out(r, now) for r in result.items]
    return ListEnvelope.of(items, page.page, page.limit, result.total)


@router.get("/{config_id}", response_model=ConfigurationOut)
def get_configuration(config_id: str, s: ServicesDep, p: Viewer, now: Now) -> ConfigurationOut:
    return configuration_out(s.configurations.get(p.workspace_id, config_id), now)


@router.put("/{config_id}", response_model=ConfigurationOut)
def replace_configuration(
    config_id: str, body: ConfigurationCreate, s: ServicesDep, p: Editor, now: Now
) -> ConfigurationOut:
    record = s.configurations.update(p.workspace_id, config_id, _values(body, unset=True), by=p)
    return configuration_out(record, now)


@router.patch("/{config_id}", response_model=ConfigurationOut)
def patch_configuration(
    config_id: str, body: ConfigurationPatch, s: ServicesDep, p: Editor, now: Now
) -> ConfigurationOut:
    changes = _values(body, unset=False)
    return configuration_out(s.configurations.patch(p.workspace_id, config_id, changes, by=p), now)


@router.delete("/{config_id}", status_code=204)
def delete_configuration(config_id: str, s: ServicesDep, p: Editor) -> Response:
    s.configurations.delete(p.workspace_id, config_id, by=p)
    return Response(status_code=204)


@router.post("/{config_id}/submit", response_model=ConfigurationOut)
def submit_configuration(config_id: str, s: ServicesDep, p: Editor, now: Now) -> ConfigurationOut:
    return configuration_out(s.configurations.submit(p.workspace_id, config_id, by=p), now)
