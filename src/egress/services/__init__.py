"""Use cases shared by every face of the API (native routes, seed faces), the CLI and the
dashboard: the only way in. Each service takes the parts it uses; ``Container.services`` builds
them."""

from __future__ import annotations

from dataclasses import dataclass

from egress.services.catalog import CatalogService
from egress.services.configurations import ConfigurationService
from egress.services.connections import ConnectionService
from egress.services.data_tables import DataTableService
from egress.services.executions import ExecutionService
from egress.services.exports import ExportService
from egress.services.identity import IdentityService


@dataclass(frozen=True)
class Services:
    configurations: ConfigurationService
    executions: ExecutionService
    connections: ConnectionService
    catalog: CatalogService
    data_tables: DataTableService
    identity: IdentityService
    exports: ExportService
