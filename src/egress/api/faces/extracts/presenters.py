"""The services' answers in seed 001's shapes."""

from __future__ import annotations

from datetime import date
from typing import Any

from egress.api.faces.extracts.schemas import (
    Account,
    Connection,
    Datasource,
    ExtractOut,
    ExtractTemplate,
    Page,
)
from egress.api.native.presenters import fires, schedule_out
from egress.services.catalog import TemplateRecord
from egress.services.configurations import ConfigurationRecord
from egress.services.connections import ConnectionRecord
from egress.services.extracts import Extract

# The vendor's display names of the connection types.
TITLES = {"postgresql": "PostgreSQL", "mysql": "MySQL", "sqlite": "SQLite", "files": "Files"}


def extract_out(e: Extract) -> ExtractOut:
    r: ConfigurationRecord = e.configuration
    firing = fires(r, e.at)
    return ExtractOut(
        id=r.id,
        title=r.name,
        template_id=r.template_id,
        connection_id=e.connection_id,
        account_id=r.account,
        account_name=r.account,
        created_at=r.created_at,
        last_sync=e.configuration.sync.last_sync,
        status=e.status,  # one of sync_status's words
        error_text=e.configuration.sync.error_text,
        schedules_limit=e.schedules_limit,
        sync_historical_data=_day(r.sync_historical_data),
        fields=r.fields,
        filters=r.conditions or [],
        additional_params=r.additional_params or {},
        # The native items (next slot, last firing, …) by their snake_case names.
        schedules=[schedule_out(s, firing).model_dump() for s in r.schedules],
        data_table_id=e.data_table_id,
    )


def _day(iso: str | None) -> date | None:
    return None if iso is None else date.fromisoformat(iso)


def page_out(items: list[Any], total: int, url: Any, page: int, size: int) -> Page[Any]:
    """The vendor's page: ``next``/``previous`` are this request's URL at the next/previous
    page (1-based), or null."""
    following = url.include_query_params(page=page + 1) if page * size < total else None
    previous = url.include_query_params(page=page - 1) if page > 1 else None
    return Page(
        count=total,
        next=None if following is None else str(following),
        previous=None if previous is None else str(previous),
        results=items,
    )


def account_out(name: str) -> Account:
    return Account(id=name, account_id=name, title=name)


def datasource_out(type_: str) -> Datasource:
    return Datasource(id=type_, name=type_, title=TITLES.get(type_, type_))


def connection_out(c: ConnectionRecord) -> Connection:
    return Connection(id=c.id, title=c.name, datasource=c.type, created_at=c.created_at)


def template_out(t: TemplateRecord) -> ExtractTemplate:
    return ExtractTemplate(
        id=t.id,
        title=t.name,
        connection_id=t.connection_id,
        source_table=t.source_table,
        fields=[f.name for f in t.fields],
        primary_key=t.primary_key,
    )
