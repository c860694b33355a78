"""/api/v1/extraction-configurations: CRUD and submit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic.alias_generators import to_camel

from egress.api.auth import CurrentPrincipal, Services
from egress.api.routers.common import page_request
from egress.api.schemas import (
    ConfigurationCreate,
    ConfigurationOut,
    ConfigurationPatch,
    ListEnvelope,
)
from egress.container import Container
from egress.db.configurations import ConfigurationRecord
from egress.domain.configuration import is_active
from egress.domain.errors import Invalid
from egress.domain.paging import PageRequest
from egress.domain.status import ConfigStatus
from egress.services import configurations as service

router = APIRouter(prefix="/api/v1/extraction-configurations", tags=["extraction configurations"])


def _out(c: Container, r: ConfigurationRecord) -> ConfigurationOut:
    return ConfigurationOut(
        id=r.id,
        name=r.name,
        template_id=r.template_id,
        fields=r.fields,
        format=r.format,
        compression=r.compression,
        destination=r.destination,
        file_name_pattern=r.file_name_pattern,
        split_by=r.split_by,
        filter=r.filter,
        extract_only_new=r.extract_only_new,
        incremental_lag=r.incremental_lag,
        date_from=r.date_from,
        date_to=r.date_to,
        watermark=r.watermark,
        start_date=r.start_date,
        end_date=r.end_date,
        status=r.status.value,
        active=is_active(r.status, r.start_date, r.end_date, c.clock()),
        version=r.version,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


_REQUIRED = ("name", "template_id", "format", "compression", "destination")


def _values(body: ConfigurationCreate) -> dict[str, object]:
    return {
        "name": body.name,
        "template_id": body.template_id,
        "fields": body.fields,
        "format": body.format,
        "compression": body.compression,
        "destination": body.destination.model_dump(by_alias=True),
        "file_name_pattern": body.file_name_pattern,
        "split_by": body.split_by,
        "filter": body.filter,
        "extract_only_new": bool(body.extract_only_new),
        "incremental_lag": body.incremental_lag,
        "date_from": body.date_from,
        "date_to": body.date_to,
        "start_date": body.start_date,
        "end_date": body.end_date,
    }


@router.post("", status_code=201, response_model=ConfigurationOut)
def create_configuration(
    body: ConfigurationCreate, c: Services, p: CurrentPrincipal
) -> ConfigurationOut:
    return _out(c, service.create(c, p.workspace_id, _values(body)))


@router.get("", response_model=ListEnvelope[ConfigurationOut])
def list_configurations(
    c: Services,
    p: CurrentPrincipal,
    page: Annotated[PageRequest, Depends(page_request)],
    status: Annotated[ConfigStatus | None, Query()] = None,
) -> ListEnvelope[ConfigurationOut]:
    result = c.configurations.list_page(p.workspace_id, status, page)
    return ListEnvelope.of([_out(c, r) for r in result.items], page.page, page.limit, result.total)


@router.get("/{config_id}", response_model=ConfigurationOut)
def get_configuration(config_id: str, c: Services, p: CurrentPrincipal) -> ConfigurationOut:
    return _out(c, c.configurations.get(p.workspace_id, config_id))


@router.put("/{config_id}", response_model=ConfigurationOut)
def replace_configuration(
    config_id: str, body: ConfigurationCreate, c: Services, p: CurrentPrincipal
) -> ConfigurationOut:
    return _out(c, service.update(c, p.workspace_id, config_id, _values(body)))


@router.patch("/{config_id}", response_model=ConfigurationOut)
def patch_configuration(
    config_id: str, body: ConfigurationPatch, c: Services, p: CurrentPrincipal
) -> ConfigurationOut:
    changes = body.model_dump(exclude_unset=True)
    if body.destination is not None:
        changes["destination"] = body.destination.model_dump(by_alias=True)
    for key in _REQUIRED:
        if key in changes and changes[key] is None:
            raise Invalid.at(("body", to_camel(key)), "must not be null")
    return _out(c, service.update(c, p.workspace_id, config_id, changes))


@router.delete("/{config_id}", status_code=204)
def delete_configuration(config_id: str, c: Services, p: CurrentPrincipal) -> Response:
    service.delete(c, p.workspace_id, config_id)
    return Response(status_code=204)


@router.post("/{config_id}/submit", response_model=ConfigurationOut)
def submit_configuration(config_id: str, c: Services, p: CurrentPrincipal) -> ConfigurationOut:
    c.configurations.get(p.workspace_id, config_id)
    record = c.configurations.update(
        p.workspace_id, config_id, {"status": ConfigStatus.SUBMITTED.value}
    )
    return _out(c, record)
