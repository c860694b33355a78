"""Builds every long-lived part from Settings, once: the one wiring place for API, CLI, worker."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from egress.access_tokens import AccessTokens
from egress.arrow_memory import release_promptly
from egress.crypto import SecretBox, load_secret_box
from egress.db.audit import AuditRepo
from egress.db.changes import metadata_version
from egress.db.configurations import ConfigurationRepo
from egress.db.connections import ConnectionRepo
from egress.db.data_tables import DataTableRepo
from egress.db.engine import make_engine
from egress.db.execution_cache import DetailsCache
from egress.db.executions import ExecutionRepo
from egress.db.leftovers import LeftoverRepo
from egress.db.oauth import GrantRepo
from egress.db.rate_buckets import RateBucketRepo
from egress.db.requests import RequestRepo
from egress.db.run_queue import RunQueue
from egress.db.schedules import ScheduleRepo
from egress.db.templates import TemplateRepo
from egress.db.users import ClientRepo, UserRepo
from egress.db.workspaces import WorkspaceRepo
from egress.domain.clock import Clock, utcnow
from egress.domain.export import RETENTION_EVERY_S
from egress.domain.retry import Backoff
from egress.engine.leftovers import Cleanup
from egress.engine.runner import Runner
from egress.services import Services
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
from egress.services.limits import PRUNE_EVERY_S, RateLimits
from egress.services.links import SignedLinks
from egress.services.oauth import OAuthServer
from egress.services.revocation import RevocationCache
from egress.services.scheduler import Fired, SchedulerService
from egress.services.sign_ins import SignInGuard
from egress.services.users import UserService
from egress.settings import Settings
from egress.signing import SigningRing, load_signing_ring
from egress.sinks.data_table import Warehouse
from egress.sources.policy import SourcePolicy
from egress.sources.pool import SourcePool
from egress.storage import Storage
from egress.worker.loop import Worker
from egress.worker.periodic import Periodic
from egress.worker.pg_listen import PgListener
from egress.worker.wakeup import Wakeup


@dataclass
class Container:
    settings: Settings
    engine: Engine
    secret_box: SecretBox
    signing: SigningRing
    storage: Storage
    workspaces: WorkspaceRepo
    connections: ConnectionRepo
    templates: TemplateRepo
    configurations: ConfigurationRepo
    executions: ExecutionRepo
    run_queue: RunQueue
    schedules: ScheduleRepo
    requests: RequestRepo
    data_tables: DataTableRepo
    audit: AuditRepo
    rate_buckets: RateBucketRepo
    warehouse: Warehouse
    policy: SourcePolicy
    source_pool: SourcePool
    users: UserRepo
    clients: ClientRepo
    grants: GrantRepo
    access_tokens: AccessTokens
    revocation_cache: RevocationCache
    clock: Clock = utcnow
    wakeup: Wakeup = field(default_factory=Wakeup)
    # Off until the API process attaches the metadata version (``create_app``'s lifespan).
    details_cache: DetailsCache = field(default_factory=DetailsCache)

    @classmethod
    def build(cls, settings: Settings, clock: Clock = utcnow) -> Container:
        settings.ensure_data_dir()
        release_promptly()  # every process that runs extractions builds one
        engine = make_engine(settings.resolved_database_url)
        signing = load_signing_ring(settings)
        return cls(
            settings=settings,
            engine=engine,
            secret_box=load_secret_box(settings),
            signing=signing,
            storage=Storage(settings.resolved_storage_url),
            workspaces=WorkspaceRepo(engine, clock),
            connections=ConnectionRepo(engine, clock),
            templates=TemplateRepo(engine, clock),
            configurations=ConfigurationRepo(engine, clock),
            executions=ExecutionRepo(engine, clock, settings.max_runs_per_workspace),
            run_queue=RunQueue(engine, clock, settings.max_runs_per_workspace),
            schedules=ScheduleRepo(engine, clock, settings.max_runs_per_workspace),
            requests=RequestRepo(engine, clock, settings.max_runs_per_workspace),
            data_tables=DataTableRepo(engine, clock),
            audit=AuditRepo(engine, clock),
            rate_buckets=RateBucketRepo(engine, clock),
            warehouse=Warehouse(make_engine(settings.resolved_warehouse_url)),
            policy=SourcePolicy.from_settings(settings),
            # A slot frees within the source timeout (connect, then read).
            source_pool=SourcePool(
                settings.source_pool_size, retry_after_s=math.ceil(settings.source_timeout_s)
            ),
            users=UserRepo(engine, clock),
            clients=ClientRepo(engine, clock),
            grants=GrantRepo(engine, clock),
            access_tokens=AccessTokens(signing, clock, settings.access_token_ttl_s),
            revocation_cache=RevocationCache(settings.revocation_cache_s),
            clock=clock,
        )

    def cache_details(self) -> None:
        """Serve execution details from memory while the metadata database has not changed
        (``db/execution_cache.py``); ``details_cache.detach()`` stops it."""
        version = metadata_version(self.engine)
        if version is not None:
            self.details_cache.attach(version)

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        self.__dict__.pop("_services", None)  # built again over the part just replaced

    @property
    def services(self) -> Services:
        """The use cases over this container's parts: built once (every request uses them),
        and again after a part is replaced (e.g. a test's clock)."""
        built: Services | None = self.__dict__.get("_services")
        if built is None:
            built = self.__dict__["_services"] = self._build_services()
        return built

    def _build_services(self) -> Services:
        audit = self._audit()
        links = self._links()
        configurations = ConfigurationService(
            self.configurations,
            self.templates,
            self.connections,
            self.data_tables,
            self.storage,
            self.schedules,
            self.clock,
            self.settings.schedules_limit,
            audit,
            self.settings.max_parallelism,
            self.warehouse.backend,
        )
        executions = self._executions(audit)
        connections = ConnectionService(self.connections, self.secret_box, self.policy, audit)
        catalog = CatalogService(self.connections, self.templates, self.secret_box, self.policy)
        users = UserService(self.users, self.clients, self.signing, audit)
        extracts = ExtractService(
            configurations,
            executions,
            catalog,
            connections,
            self.configurations,
            self.templates,
            self.data_tables,
            self.clock,
        )
        sign_ins = SignInGuard(audit, self._limits())
        return Services(
            configurations=configurations,
            executions=executions,
            connections=connections,
            catalog=catalog,
            data_tables=DataTableService(self.data_tables, self.warehouse, self.signing),
            extracts=extracts,
            identity=IdentityService(
                self.workspaces,
                self.users,
                self.clients,
                self.signing,
                self.access_tokens,
                self.revocation_cache,
                self.clock,
                audit,
            ),
            users=users,
            make_oauth=lambda: OAuthServer(
                users, self.grants, self.access_tokens, self.signing, self.clock, sign_ins
            ),
            exports=ExportService(
                self.requests,
                self.templates,
                self.connections,
                self.data_tables,
                self.storage,
                self.signing,
                links,
                self.wakeup,
                self.clock,
                self.settings.export_job_limit,
                self.settings.export_url_ttl_s,
                self.settings.public_url,
                audit,
                self.warehouse.engine.url.get_backend_name(),
            ),
            extraction_runs=ExtractionRunService(configurations, self.templates, executions),
            element_configurations=ElementConfigurationService(
                configurations, extracts, catalog, self.templates, self.data_tables
            ),
            audit=audit,
            sign_ins=sign_ins,
            links=links,
            key_rotation=KeyRotation(self.connections, self.secret_box),
        )

    def _audit(self) -> AuditService:
        return AuditService(self.audit, self.clock)

    def _limits(self) -> RateLimits:
        s = self.settings
        return RateLimits(
            self.rate_buckets,
            self.clock,
            s.triggers_per_minute,
            s.failed_signins_per_minute,
            self.revocation_cache,
        )

    def _links(self) -> SignedLinks:
        return SignedLinks(self.signing, self.clock, self.settings.signed_url_ttl_s)

    def _executions(self, audit: AuditService) -> ExecutionService:
        return ExecutionService(
            self.configurations,
            self.templates,
            self.connections,
            self.executions,
            self.wakeup,
            self.clock,
            self.settings.max_selected_rows,
            audit,
            self._limits(),
            self._links(),
            self.details_cache,
        )

    def scheduler_service(self) -> SchedulerService:
        return SchedulerService(
            self.schedules,
            self._executions(self._audit()),
            self.clock,
            self.settings.schedule_max_lateness_s,
        )

    def scheduler(self) -> Periodic[list[Fired]]:
        """The scheduler loop (``egress scheduler``, and inside ``egress serve``)."""
        return Periodic(
            "scheduler", self.settings.scheduler_interval_s, self.scheduler_service().run_once
        )

    def runner(self) -> Runner:
        return Runner(
            self.connections,
            self.run_queue,
            self.storage,
            self.data_tables,
            self.warehouse,
            self.secret_box,
            self.policy,
            self.clock,
            self.settings.batch_rows,
            self.settings.batch_bytes,
            self.settings.max_split_parts,
            Cleanup(
                self.storage, self.run_queue, LeftoverRepo(self.engine, self.clock), self.clock
            ),
        )

    def worker(self, name: str = "worker") -> Worker:
        s = self.settings
        return Worker(
            self.run_queue,
            self.runner(),
            self.clock,
            concurrency=s.worker_concurrency,
            lease_s=s.lease_s,
            heartbeat_s=s.heartbeat_s,
            poll_s=s.poll_s,
            max_attempts=s.max_attempts,
            stall_s=self.policy.stall_s,
            backoff=Backoff(s.retry_base_s, s.retry_max_s),
            wakeup=self.wakeup,
            listener=(
                PgListener(s.resolved_database_url, self.wakeup)
                if self.engine.dialect.name == "postgresql"
                else None
            ),
            name=name,
            loops=[
                Periodic(
                    "export-retention",
                    RETENTION_EVERY_S,
                    lambda: self.services.exports.delete_expired(),
                ),
                Periodic("rate-bucket-prune", PRUNE_EVERY_S, lambda: self._limits().prune_full()),
            ],
        )
