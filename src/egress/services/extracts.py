"""Extracts: a configuration that reads one account of a connection into a data table, as
seed 001 (an embedded extracts API) sees it. Made of the other services' rules; the rules of
its own are here: the data table a title loads, its mode from the template's key, one account,
system columns, and the one-word sync status."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from egress.db.configurations import ConfigurationRepo
from egress.db.data_tables import DataTableRepo
from egress.db.paging import Page
from egress.db.templates import TemplateRecord, TemplateRepo
from egress.domain.clock import Clock
from egress.domain.configuration import loading_values
from egress.domain.data_tables import mode_for_key, name_for_title, system_column_clash
from egress.domain.errors import Invalid, NotFound
from egress.domain.identity import Principal
from egress.domain.paging import MAX_LIMIT, PageRequest
from egress.services.catalog import CatalogService
from egress.services.configurations import (
    ConfigurationRecord,
    ConfigurationService,
    sync_status_of,
)
from egress.services.connections import ConnectionService
from egress.services.executions import ExecutionService

# What an extract's update may change (seed 001: schedules, fields, filters, additional
# parameters and the historical sync), by logical name, and what a PUT sets the ones it leaves
# out to.
UPDATABLE: dict[str, Any] = {
    "fields": None,
    "conditions": None,
    "additional_params": None,
    "schedules": [],
    "sync_historical_data": None,
}


@dataclass(frozen=True)
class NewExtract:
    title: str  # the data table's title; also the extract's (its configuration's name)
    template_id: str
    accounts: list[str] | None
    fields: list[str] | None
    conditions: list[dict[str, Any]] | None
    additional_params: dict[str, Any] | None
    schedules: list[dict[str, Any]] = field(default_factory=list)  # native items (cron, …)
    sync_historical_data: str | None = None  # ISO day the backfill starts from


@dataclass(frozen=True)
class Extract:
    configuration: ConfigurationRecord
    connection_id: str
    data_table_id: str | None  # None until its first load creates the table
    status: str  # services.configurations.sync_status_of
    schedules_limit: int  # the configuration's, else EGRESS_SCHEDULES_LIMIT
    at: datetime  # the moment ``status`` (and whether its schedules fire) was read at


class ExtractService:
    def __init__(
        self,
        configurations: ConfigurationService,
        executions: ExecutionService,
        catalog: CatalogService,
        connections: ConnectionService,
        configuration_repo: ConfigurationRepo,
        templates: TemplateRepo,
        data_tables: DataTableRepo,
        clock: Clock,
    ) -> None:
        self._configurations = configurations
        self._executions = executions
        self._catalog = catalog
        self._connections = connections
        self._configuration_repo = configuration_repo
        self._templates = templates
        self._data_tables = data_tables
        self._clock = clock

    def _template(self, workspace_id: str, template_id: str) -> TemplateRecord:
        try:
            return self._templates.get(workspace_id, template_id)
        except NotFound as exc:
            raise Invalid.at(("body", "template_id"), f"unknown template {template_id!r}") from exc

    def create(self, workspace_id: str, new: NewExtract, by: Principal | None = None) -> Extract:
        """A submitted configuration loading the data table ``new.title`` names (upsert by the
        template's key, append without one), adding the system columns to every load."""
        template = self._template(workspace_id, new.template_id)
        account = self._catalog.account_check(workspace_id, template, new.accounts)
        read = new.fields if new.fields is not None else [f.name for f in template.fields]
        if clash := system_column_clash(read):
            raise Invalid.at(("body", "fields"), clash)
        destination = {
            "type": "dataTable",
            "dataTable": name_for_title(new.title),
            "mode": mode_for_key(template.primary_key),
        }
        values = loading_values(new.title, template.id, new.fields, destination) | {
            "account": account,
            "conditions": new.conditions,
            "additional_params": new.additional_params,
            "system_columns": True,
            "schedules": new.schedules,
            "sync_historical_data": new.sync_historical_data,
        }
        record = self._configurations.create(workspace_id, values, by=by)
        self._configurations.submit(workspace_id, record.id, by=by)
        return self.get(workspace_id, record.id)

    def get(self, workspace_id: str, extract_id: str) -> Extract:
        return self._extract(self._configurations.get(workspace_id, extract_id))

    def _extract(self, record: ConfigurationRecord) -> Extract:
        template = self._templates.get(record.workspace_id, record.template_id)
        table_name = record.destination.get("dataTable")
        table = (
            None
            if table_name is None
            else self._data_tables.find(record.workspace_id, str(table_name))
        )
        now = self._clock()
        return Extract(
            record,
            template.connection_id,
            None if table is None else table.id,
            sync_status_of(record, now),
            self._configurations.schedules_limit_of(record),
            now,
        )

    def list_page(
        self,
        workspace_id: str,
        page: PageRequest,
        connection_id: str | None,
        data_table_id: str | None,
    ) -> Page[Extract]:
        """Extracts, newest first; with ``connection_id``, those reading it; with
        ``data_table_id``, those loading that table (an unknown one: none)."""
        table_name = None
        if data_table_id is not None:
            try:
                table_name = self._data_tables.get(workspace_id, data_table_id).name
            except NotFound:
                return Page([], 0, page)
        found = self._configuration_repo.list_page(
            workspace_id, None, page, connection_id=connection_id, data_table=table_name
        )
        return Page([self._extract(r) for r in found.items], found.total, page)

    def update(
        self,
        workspace_id: str,
        extract_id: str,
        changes: dict[str, Any],
        *,
        replace: bool,
        by: Principal | None = None,
    ) -> Extract:
        """``changes`` by logical name (see UPDATABLE); with ``replace`` (PUT) the updatable
        attributes left out go back to their defaults, else (PATCH) they stay as they are."""
        unknown = sorted(set(changes) - set(UPDATABLE))
        if unknown:
            raise Invalid.at(("body", unknown[0]), "cannot be changed on an extract")
        if replace:
            changes = {**UPDATABLE, **changes}
        self._configurations.update(workspace_id, extract_id, changes, by=by)
        return self.get(workspace_id, extract_id)

    def run(
        self,
        workspace_id: str,
        extract_id: str,
        date_from: str | None,
        date_to: str | None,
        by: Principal | None = None,
    ) -> tuple[Extract, str]:
        """Trigger an execution over ``[date_from, date_to)``; the extract and the execution id."""
        options = {
            key: value
            for key, value in (("dateFrom", date_from), ("dateTo", date_to))
            if value is not None
        }
        execution, _created = self._executions.trigger(workspace_id, extract_id, options, by=by)
        return self.get(workspace_id, extract_id), execution.id

    def pause(self, workspace_id: str, extract_id: str, by: Principal | None = None) -> Extract:
        """Stop its schedules and backfill (seed 001 has no cancelling of queued runs)."""
        self._configurations.pause(workspace_id, extract_id, cancel_queued=False, by=by)
        return self.get(workspace_id, extract_id)

    def resume(self, workspace_id: str, extract_id: str, by: Principal | None = None) -> Extract:
        self._configurations.resume(workspace_id, extract_id, by=by)
        return self.get(workspace_id, extract_id)

    def accounts(self, workspace_id: str, connection_id: str) -> list[str]:
        return self._catalog.accounts(workspace_id, connection_id)

    def templates(
        self, workspace_id: str, connection_type: str, page: PageRequest
    ) -> Page[TemplateRecord]:
        """The templates over connections of one type, each connection's discovered first."""
        connections = self._connections.list_page(
            workspace_id, PageRequest(0, MAX_LIMIT), connection_type
        )
        for connection in connections.items:
            self._catalog.discover(workspace_id, connection.id)
        return self._templates.list_page(workspace_id, None, page, connection_type)
