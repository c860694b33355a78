"""Runs of a configuration started from one of its catalog elements, polled as requests: seed
002 (a workspace extraction-run API). The rules are the ones native triggers use; what is
this module's own: the workspace in the path, which element a configuration extracts, and the
request a client polls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from egress.db.templates import TemplateRepo
from egress.db.transitions import RequestTicket
from egress.domain.catalog import element_fields
from egress.domain.export import EXTRACTION_REQUEST_PREFIX, new_request_id
from egress.domain.identity import Principal, own_workspace
from egress.services.configurations import ConfigurationService
from egress.services.executions import ExecutionService
from egress.services.exports import owner_of


@dataclass(frozen=True)
class ElementRun:
    request_id: str
    execution_id: str


class ExtractionRunService:
    def __init__(
        self,
        configurations: ConfigurationService,
        templates: TemplateRepo,
        executions: ExecutionService,
    ) -> None:
        self._configurations = configurations
        self._templates = templates
        self._executions = executions

    def run(
        self,
        principal: Principal,
        workspace_id: str,
        configuration_id: str,
        element_type: str,
        element_id: str,
        options: dict[str, Any],
    ) -> ElementRun:
        """Trigger the configuration from an element it extracts (its folder or file: every
        field; one of its columns: that column and the key) with the native run ``options``
        (``extractOnlyNew``, ``rows``, ``whereClause``, ``selectAll``); run 1 is pollable as
        the returned request."""
        ws = own_workspace(principal, workspace_id)
        cfg = self._configurations.get(ws, configuration_id)
        template = self._templates.get(ws, cfg.template_id)
        read = cfg.fields if cfg.fields is not None else [f.name for f in template.fields]
        fields = element_fields(
            template.connection_id,
            template.source,
            read,
            template.primary_key,
            element_type,
            element_id,
        )
        ticket = RequestTicket(
            new_request_id(EXTRACTION_REQUEST_PREFIX), owner_of(principal), configuration_id
        )
        execution, _created = self._executions.trigger(
            ws, configuration_id, options, by=principal, fields=fields, request=ticket
        )
        return ElementRun(ticket.id, execution.id)
