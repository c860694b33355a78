"""Use cases shared by every face of the API (native routes, seed faces), the CLI and the
dashboard: the only way in. Each service takes the parts it uses; ``Container.services`` builds
them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from egress.services.audit import AuditService
from egress.services.catalog import CatalogService
from egress.services.configurations import ConfigurationService
from egress.services.connections import ConnectionService
from egress.services.data_tables import DataTableService
from egress.services.element_configurations import ElementConfigurationService
from egress.services.executions import ExecutionService
from egress.services.exports import ExportService
from egress.services.extraction_runs import ExtractionRunService
from egress.services.extracts import ExtractService
from egress.services.identity import IdentityService
from egress.services.key_rotation import KeyRotation
from egress.services.links import SignedLinks
from egress.services.oauth import OAuthServer
from egress.services.sign_ins import SignInGuard
from egress.services.users import UserService


@dataclass(frozen=True)
class Services:
    configurations: ConfigurationService
    executions: ExecutionService
    connections: ConnectionService
    catalog: CatalogService
    data_tables: DataTableService
    identity: IdentityService
    extracts: ExtractService
    exports: ExportService
    extraction_runs: ExtractionRunService
    element_configurations: ElementConfigurationService
    users: UserService
    audit: AuditService
    sign_ins: SignInGuard
    links: SignedLinks
    key_rotation: KeyRotation
    # Built on first use: only the OAuth routes need it, and every request builds Services.
    make_oauth: Callable[[], OAuthServer]

    @cached_property
    def oauth(self) -> OAuthServer:
        return self.make_oauth()
