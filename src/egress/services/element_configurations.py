"""Configurations made, replaced and found by catalog element: seed 002's configuration routes
(a workspace extraction API). A configuration reads one table or file — named by its FILE
element or one of its COLUMN elements — into a data table (or a file); the rules are the
configurations service's, the ones here map the vendor's terms onto it: which table an
element is, which columns its ids name, which data table its output is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from egress.db.data_tables import DataTableRepo
from egress.db.paging import every_item
from egress.db.templates import DISCOVERED, TemplateRecord, TemplateRepo
from egress.domain.catalog import (
    COLUMN,
    FILE,
    FOLDER,
    column_path,
    element_fields,
    element_id,
    element_paths,
)
from egress.domain.configuration import loading_values
from egress.domain.data_tables import mode_for_key, name_for_title
from egress.domain.errors import Invalid, NotFound
from egress.domain.identity import Principal, own_workspace
from egress.services.catalog import CatalogService
from egress.services.configurations import ConfigurationService
from egress.services.extracts import Extract, ExtractService

# Where the vendor's own attributes (element, column descriptions, …) are kept for the client.
KEPT = "workspaceExtraction"
NO_DERIVED_COLUMNS = (
    "Egress extracts what the source holds: it derives no column from a description or a "
    "JSON schema"
)


@dataclass(frozen=True)
class NewElementConfiguration:
    """Seed 002's configuration object in logical terms."""

    title: str
    element_type: str
    element_id: str
    template_id: str | None = None  # inputTableId: a template over the element's table
    key_ids: list[str] | None = None  # primaryKeyColumnId: COLUMN element ids
    new_table: bool = True  # outputConfiguration.createNewWorkbook
    table_title: str | None = None
    table_id: str | None = None
    store: bool = True  # storeExtractedData: into a data table (else a file)
    scheduled: bool = False  # scheduleType CRON (else MANUAL)
    cron: str | None = None  # its schedule.cronExpression
    timezone: str = "UTC"
    columns: list[str] | None = None  # columnConfiguration's names, in order
    advanced: bool = False  # extractionMode ADVANCED
    kept: dict[str, Any] = field(default_factory=dict)  # shown back as given
    id: str | None = None  # a full object's own id (PUT): the path's


@dataclass(frozen=True)
class ElementConfiguration:
    extract: Extract  # the configuration, its connection and data table
    template: TemplateRecord
    element_type: str
    element_id: str
    key_ids: list[str]
    kept: dict[str, Any]


def _column_id(t: TemplateRecord, name: str) -> str:
    assert t.source is not None  # a table's template
    return element_id(t.connection_id, COLUMN, column_path(element_paths(t.source)[1], name))


class ElementConfigurationService:
    def __init__(
        self,
        configurations: ConfigurationService,
        extracts: ExtractService,
        catalog: CatalogService,
        templates: TemplateRepo,
        data_tables: DataTableRepo,
    ) -> None:
        self._configurations = configurations
        self._extracts = extracts
        self._catalog = catalog
        self._templates = templates
        self._data_tables = data_tables

    def create(
        self, principal: Principal, workspace_id: str, new: NewElementConfiguration
    ) -> ElementConfiguration:
        ws = own_workspace(principal, workspace_id)
        record = self._configurations.create(ws, self._values(ws, new), by=principal)
        self._configurations.submit(ws, record.id, by=principal)
        return self._view(ws, record.id)

    def replace(
        self,
        principal: Principal,
        workspace_id: str,
        cfg_id: str,
        new: NewElementConfiguration,
    ) -> ElementConfiguration:
        ws = own_workspace(principal, workspace_id)
        self._configurations.get(ws, cfg_id)  # 404 before the body is looked at
        if new.id is not None and new.id != cfg_id:
            raise Invalid.at(("body", "id"), f"is {new.id!r}, the path names {cfg_id!r}")
        self._configurations.update(ws, cfg_id, self._values(ws, new), by=principal)
        return self._view(ws, cfg_id)

    def delete(self, principal: Principal, workspace_id: str, cfg_id: str) -> None:
        ws = own_workspace(principal, workspace_id)
        self._configurations.delete(ws, cfg_id, by=principal)

    def attached(
        self, principal: Principal, workspace_id: str, element_type: str, wanted: str
    ) -> list[ElementConfiguration]:
        """The configurations that extract the element (``domain.catalog.element_fields``)."""
        ws = own_workspace(principal, workspace_id)
        found = []
        for record in every_item(lambda page: self._configurations.list_page(ws, None, page)):
            t = self._templates.get(ws, record.template_id)
            read = record.fields if record.fields is not None else [f.name for f in t.fields]
            try:
                element_fields(t.connection_id, t.source, read, t.primary_key, element_type, wanted)
            except NotFound:
                continue
            found.append(self._view(ws, record.id))
        return found

    def _view(self, ws: str, cfg_id: str) -> ElementConfiguration:
        extract = self._extracts.get(ws, cfg_id)
        t = self._templates.get(ws, extract.configuration.template_id)
        kept = dict((extract.configuration.additional_params or {}).get(KEPT) or {})
        file = (
            None
            if t.source is None
            else element_id(t.connection_id, FILE, element_paths(t.source)[1])
        )
        return ElementConfiguration(
            extract,
            t,
            kept.pop("elementType", FILE),
            kept.pop("elementId", file or ""),
            [] if t.source is None else [_column_id(t, k) for k in t.primary_key],
            kept,
        )

    def _table(self, ws: str, element_type: str, wanted: str) -> TemplateRecord:
        """The discovered template of the table whose FILE or COLUMN element is ``wanted``."""
        if element_type == FOLDER:
            raise Invalid.at(
                ("body", "elementType"),
                "a configuration extracts one table or file: give its FILE element "
                "(or one of its COLUMN elements), not a FOLDER",
            )
        for t in every_item(lambda page: self._templates.list_page(ws, None, page)):
            if t.kind != DISCOVERED or t.source is None:
                continue
            file = element_paths(t.source)[1]
            if element_type == FILE and wanted == element_id(t.connection_id, FILE, file):
                return t
            if element_type == COLUMN and any(wanted == _column_id(t, f.name) for f in t.fields):
                return t
        raise Invalid.at(
            ("body", "elementId"),
            f"no {element_type} element {wanted!r} in this workspace's catalog "
            "(GET /api/v1/connections/{id}/elements lists them)",
        )

    def _template(self, ws: str, new: NewElementConfiguration) -> TemplateRecord:
        """The element's table's template: ``inputTableId`` when given (one over that table),
        else the discovered one; with a key other than the template's, a custom template with
        that key."""
        table = self._table(ws, new.element_type, new.element_id)
        t = table
        if new.template_id is not None:
            try:
                t = self._templates.get(ws, new.template_id)
            except NotFound:
                t = None  # type: ignore[assignment]
            if t is None or (t.connection_id, t.source) != (table.connection_id, table.source):
                raise Invalid.at(
                    ("body", "inputTableId"), f"is not a template over {table.source_table}"
                )
        if new.key_ids is None:
            return t
        by_id = {_column_id(t, f.name): f.name for f in t.fields}
        key = []
        for i, column in enumerate(new.key_ids):
            if column not in by_id:
                raise Invalid.at(
                    ("body", "primaryKeyColumnId", i), f"is not a COLUMN of {t.source_table}"
                )
            key.append(by_id[column])
        if key == t.primary_key:
            return t
        assert t.source is not None  # found by its element: a table's template
        return self._catalog.create_custom_template(
            ws,
            t.connection_id,
            new.title,
            t.source.name,
            None,
            key,
            t.cursor_field,
            t.date_field,
            schema=t.source.schema,
        )

    def _values(self, ws: str, new: NewElementConfiguration) -> dict[str, Any]:
        if new.advanced:
            raise Invalid.at(("body", "extractionMode"), f"ADVANCED: {NO_DERIVED_COLUMNS}")
        t = self._template(ws, new)
        for i, name in enumerate(new.columns or []):
            if t.field(name) is None:
                raise Invalid.at(
                    ("body", "columnConfiguration", i, "name"),
                    f"{name!r} is not a column of {t.source_table}; {NO_DERIVED_COLUMNS}",
                )
        destination: dict[str, Any] = {"type": "storage", "path": ""}
        if new.store:
            destination = {
                "type": "dataTable",
                "dataTable": self._table_name(ws, new),
                "mode": mode_for_key(t.primary_key),
            }
        if new.scheduled and new.cron is None:
            loc = ("body", "schedule", "cronExpression")
            raise Invalid.at(loc, "is required when scheduleType is CRON")
        schedules = [{"cron": new.cron, "timezone": new.timezone}] if new.scheduled else []
        kept = {"elementType": new.element_type, "elementId": new.element_id, **new.kept}
        return loading_values(new.title, t.id, new.columns or None, destination) | {
            "conditions": None,
            "additional_params": {KEPT: kept},
            "schedules": schedules,
        }

    def _table_name(self, ws: str, new: NewElementConfiguration) -> str:
        """A new data table named by its title (the configuration's when none), or an
        existing one by id."""
        if new.new_table:
            return name_for_title(new.table_title or new.title)
        loc = ("body", "outputConfiguration", "tableId")
        if new.table_id is None:
            raise Invalid.at(loc, "is required when createNewWorkbook is false")
        try:
            return self._data_tables.get(ws, new.table_id).name
        except NotFound as exc:
            raise Invalid.at(loc, f"no data table {new.table_id!r}") from exc
