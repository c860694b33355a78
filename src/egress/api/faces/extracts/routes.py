"""Seed 001's paths: each parses, calls one service method and presents the answer."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from egress.api.errors import relocated
from egress.api.faces.extracts.presenters import (
    account_out,
    connection_out,
    datasource_out,
    extract_out,
    page_out,
    template_out,
)
from egress.api.faces.extracts.schemas import (
    Accounts,
    Connection,
    Datasource,
    ExtractCreate,
    ExtractOut,
    ExtractRunOut,
    ExtractRunRequest,
    ExtractTemplate,
    ExtractUpdate,
    Filter,
    Page,
    Schedule,
)
from egress.api.wiring import Editor, InSourcePool, ServicesDep, Viewer
from egress.domain.errors import FieldProblem
from egress.domain.paging import MAX_LIMIT, MAX_PAGE, PageRequest
from egress.services.extracts import NewExtract

v31 = APIRouter(tags=["extracts (seed 001)"])
v3 = APIRouter(tags=["extracts (seed 001)"])

# The vendor's page size when none is asked for.
DEFAULT_PAGE_SIZE = 100
PageNo = Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number")]
PageSize = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]


# What a create body holds inside ``template_settings``: a problem with one is named there.
_SETTINGS = ("fields", "filters", "additional_params")


def _in_settings(exc: FieldProblem) -> FieldProblem:
    """``exc`` with the fields of ``template_settings`` named as the create body holds them
    (``template_settings.filters.0.value``, not ``filters.0.value``)."""

    def moved(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
        inside = len(loc) > 1 and loc[0] == "body" and loc[1] in _SETTINGS
        return ("body", "template_settings", *loc[1:]) if inside else loc

    return relocated(exc, moved)


def _conditions(filters: list[Filter] | None) -> list[dict[str, object]] | None:
    return None if filters is None else [f.model_dump() for f in filters]


def _schedules(schedules: list[Schedule] | None) -> list[dict[str, Any]]:
    """The native schedule items (null: none)."""
    return [s.model_dump() for s in schedules or []]


def _day(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


async def _create(body: ExtractCreate, s: ServicesDep, p: Editor, pool: InSourcePool) -> ExtractOut:
    settings = body.template_settings
    new = NewExtract(
        title=body.data_table_title,
        template_id=body.template_id,
        accounts=body.accounts,
        fields=None if settings is None else settings.fields,
        conditions=None if settings is None else _conditions(settings.filters),
        additional_params=None if settings is None else settings.additional_params,
        schedules=_schedules(body.schedules),
        sync_historical_data=_day(body.sync_historical_data),
    )
    try:  # the account is checked against the connection's catalog: a source call
        return extract_out(await pool(lambda: s.extracts.create(p.workspace_id, new, by=p)))
    except FieldProblem as exc:
        raise _in_settings(exc) from exc


v31.add_api_route(
    "/extracts/", _create, methods=["POST"], status_code=201, response_model=ExtractOut
)
v3.add_api_route("/extracts", _create, methods=["POST"], status_code=201, response_model=ExtractOut)


@v3.get("/extracts", response_model=Page[ExtractOut])
def list_extracts(
    request: Request,
    s: ServicesDep,
    p: Viewer,
    page: PageNo = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
    connection_id: Annotated[str | None, Query(max_length=36)] = None,
    data_table_id: Annotated[str | None, Query(max_length=36)] = None,
) -> Page[ExtractOut]:
    found = s.extracts.list_page(
        p.workspace_id, PageRequest(page - 1, page_size), connection_id, data_table_id
    )
    items = [extract_out(e) for e in found.items]
    return page_out(items, found.total, request.url, page, page_size)


@v3.get("/extracts/{extract_id}", response_model=ExtractOut)
def get_extract(extract_id: str, s: ServicesDep, p: Viewer) -> ExtractOut:
    return extract_out(s.extracts.get(p.workspace_id, extract_id))


def _changes(body: ExtractUpdate) -> dict[str, object]:
    """The updatable attributes given, by their logical names."""
    given = body.model_fields_set
    mapped = {"filters", "schedules", "sync_historical_data"}
    changes: dict[str, object] = {key: getattr(body, key) for key in given - mapped}
    if "filters" in given:
        changes["conditions"] = _conditions(body.filters)
    if "schedules" in given:
        changes["schedules"] = _schedules(body.schedules)
    if "sync_historical_data" in given:
        changes["sync_historical_data"] = _day(body.sync_historical_data)
    return changes


@v3.put("/extracts/{extract_id}", response_model=ExtractOut)
def replace_extract(extract_id: str, body: ExtractUpdate, s: ServicesDep, p: Editor) -> ExtractOut:
    return extract_out(
        s.extracts.update(p.workspace_id, extract_id, _changes(body), replace=True, by=p)
    )


@v3.patch("/extracts/{extract_id}", response_model=ExtractOut)
def patch_extract(extract_id: str, body: ExtractUpdate, s: ServicesDep, p: Editor) -> ExtractOut:
    return extract_out(
        s.extracts.update(p.workspace_id, extract_id, _changes(body), replace=False, by=p)
    )


@v3.post("/extracts/{extract_id}/run", response_model=ExtractRunOut)
def run_extract(
    extract_id: str,
    s: ServicesDep,
    p: Editor,
    body: ExtractRunRequest | None = None,
) -> ExtractRunOut:
    body = body or ExtractRunRequest()
    extract, execution_id = s.extracts.run(
        p.workspace_id, extract_id, body.date_from, body.date_to, by=p
    )
    return ExtractRunOut(**extract_out(extract).model_dump(), execution_id=execution_id)


@v3.post("/extracts/{extract_id}/pause", response_model=ExtractOut)
def pause_extract(extract_id: str, s: ServicesDep, p: Editor) -> ExtractOut:
    return extract_out(s.extracts.pause(p.workspace_id, extract_id, by=p))


@v3.post("/extracts/{extract_id}/resume", response_model=ExtractOut)
def resume_extract(extract_id: str, s: ServicesDep, p: Editor) -> ExtractOut:
    return extract_out(s.extracts.resume(p.workspace_id, extract_id, by=p))


@v3.get("/connections/{connection_id}/accounts", response_model=Accounts)
async def list_accounts(
    connection_id: str, s: ServicesDep, p: Viewer, pool: InSourcePool
) -> Accounts:
    names = await pool(lambda: s.extracts.accounts(p.workspace_id, connection_id))
    return Accounts(results=[account_out(n) for n in names])


@v3.get("/datasources", response_model=Page[Datasource])
def list_datasources(s: ServicesDep, p: Viewer) -> Page[Datasource]:
    types = s.connections.types()
    return Page(
        count=len(types), next=None, previous=None, results=list(map(datasource_out, types))
    )


@v3.get("/datasources/{datasource_name}/connections", response_model=Page[Connection])
def list_datasource_connections(
    request: Request,
    datasource_name: str,
    s: ServicesDep,
    p: Viewer,
    page: PageNo = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
) -> Page[Connection]:
    found = s.connections.list_page(
        p.workspace_id, PageRequest(page - 1, page_size), datasource_name
    )
    items = [connection_out(c) for c in found.items]
    return page_out(items, found.total, request.url, page, page_size)


@v3.get("/datasources/{datasource_name}/extract-templates", response_model=Page[ExtractTemplate])
async def list_extract_templates(
    request: Request,
    datasource_name: str,
    s: ServicesDep,
    p: Viewer,
    pool: InSourcePool,
    page: PageNo = 1,
    page_size: PageSize = DEFAULT_PAGE_SIZE,
) -> Page[ExtractTemplate]:
    def listed() -> Page[ExtractTemplate]:
        found = s.extracts.templates(
            p.workspace_id, datasource_name, PageRequest(page - 1, page_size)
        )
        items = [template_out(t) for t in found.items]
        return page_out(items, found.total, request.url, page, page_size)

    return await pool(listed)
