"""All configuration of Egress in one place: ``EGRESS_*`` environment variables.

Every default serves the embedded mode (SQLite metadata, local files under the data dir,
worker inside ``egress serve``), so a fresh machine needs no configuration at all.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from egress.domain.export import DEFAULT_EXPORT_JOB_LIMIT, DEFAULT_EXPORT_URL_TTL_S
from egress.domain.options import DEFAULT_MAX_SELECTED_ROWS
from egress.domain.schedules import DEFAULT_MAX_LATENESS_S, DEFAULT_SCHEDULES_LIMIT

# Long enough that a GC pause or a slow batch never loses a healthy lease, short enough that a
# killed worker's run is picked up again within half a minute.
DEFAULT_LEASE_S = 30.0
# Heartbeats extend the lease, publish progress and pick up cancels: at most once a second.
DEFAULT_HEARTBEAT_S = 1.0
# Idle workers look for new runs this often when nothing wakes them earlier.
DEFAULT_POLL_S = 0.5
# A run that failed for a transient reason waits about this long before its second attempt
# (doubling per attempt, with jitter): a deadlock or a dropped connection clears in seconds.
DEFAULT_RETRY_BASE_S = 2.0
# ...and never longer than this between attempts, however many EGRESS_MAX_ATTEMPTS allows.
DEFAULT_RETRY_MAX_S = 300.0
# Arrow batches of this many rows keep memory flat while amortising per-batch overhead.
DEFAULT_BATCH_ROWS = 65_536
# ...and end at this many bytes of values: 65,536 rows of 2 KB held 1.2 GB as Python objects;
# 16 MiB (ADBC's own batch size) kept MySQL's peak at 343 MiB against 577 MiB at 64 MiB; 8 MiB
# (with ADBC's batches as large) took a Parquet run's peak from 126 to 112 MiB above idle and
# was no slower for Parquet, JSONL or CSV (bench/README.md, 2026-12-02).
DEFAULT_BATCH_BYTES = 8 << 20
# Each part of a split run keeps a file open; this bounds open files and memory per run.
DEFAULT_MAX_SPLIT_PARTS = 1000
DEFAULT_MAX_PARALLELISM = 4
# A presigned download URL outlives the redirect long enough to start a slow download, yet a
# leaked one soon stops working. SigV4 refuses URLs that live longer than seven days.
DEFAULT_DOWNLOAD_URL_TTL_S = 900
MAX_DOWNLOAD_URL_TTL_S = 7 * 24 * 3600
# Connecting to a source (TCP, TLS, handshake) and every interactive source call (/test, catalog
# browsing, describing a SQL template) must answer within this, or the request fails clearly.
DEFAULT_SOURCE_TIMEOUT_S = 15.0
# A run's source that sends nothing for this long is stuck, not slow: a big sort's first row
# takes minutes, not five.
DEFAULT_SOURCE_STALL_S = 300.0
# Interactive source calls run in their own small pool, so a hanging source cannot take every
# request thread of the API; a full pool answers 429.
DEFAULT_SOURCE_POOL_SIZE = 8
# Catalog listings stop here with a clear error instead of walking /usr or a symlink loop.
DEFAULT_CATALOG_MAX_DEPTH = 16
DEFAULT_CATALOG_MAX_ENTRIES = 100_000
# Link-local addresses, where clouds serve instance credentials (169.254.169.254, fd00:ec2::254).
DEFAULT_CONNECTION_DENY_HOSTS = "169.254.0.0/16,fe80::/10,fd00:ec2::254"
# The largest request body: far above any real configuration or connection (SQL templates and
# whereClauses stop at 100,000 characters, selected rows at 10,000), far below what hurts memory.
DEFAULT_MAX_BODY_BYTES = 8 << 20
# OAuth access tokens (JWTs) are checked without the database: short-lived, so a leaked one soon
# stops working; revocation reaches them through the per-subject not-before check instead.
DEFAULT_ACCESS_TOKEN_TTL_S = 3600
# What the database said about a credential is reused this long: the most a revocation, a
# removed user or a lowered role can take to apply, and what spares polling a query per request.
DEFAULT_REVOCATION_CACHE_S = 5.0
# Fair-use limits (README "Limits"): a burst of this many, then this many a minute. Triggers
# count per user (the actor behind a token); failed sign-ins per source address, which is
# what slows a guessing client down without locking a real user out for long.
DEFAULT_TRIGGERS_PER_MINUTE = 60
DEFAULT_FAILED_SIGNINS_PER_MINUTE = 20
# Runs of one workspace queued or running at once; further ones wait ON_HOLD. Far above the
# default worker concurrency, so only a workspace flooding the queue ever waits.
DEFAULT_MAX_RUNS_PER_WORKSPACE = 50
# A signed file link works this long: enough to hand it to a browser or a colleague today.
DEFAULT_SIGNED_URL_TTL_S = 3600
# A scheduler round looks for due slots this often: a slot fires within about this long.
DEFAULT_SCHEDULER_INTERVAL_S = 0.5
# The data dir and everything Egress creates are for the user it runs as only (see cli.main).
DATA_DIR_MODE = 0o700


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EGRESS_", extra="ignore")

    data_dir: Path = Field(default=Path("./egress-data"))
    database_url: str | None = None
    storage_url: str | None = None
    warehouse_url: str | None = None
    # Fernet keys sealing connection secrets, comma-separated: the first seals, all open.
    # Unset: EGRESS_SECRET_KEY, else <data dir>/secret.key (generated), as a ring of one.
    secret_keys: str | None = None
    secret_key: str | None = None
    # "<id>:<base64>" HMAC keys, comma-separated: the first signs, all verify (token hashes,
    # cursors). Unset: one key generated into <data dir>/signing.key.
    signing_keys: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    worker_concurrency: int = Field(default=2, ge=1, le=64)
    bootstrap_token: str | None = None
    lease_s: float = Field(default=DEFAULT_LEASE_S, gt=0)
    heartbeat_s: float = Field(default=DEFAULT_HEARTBEAT_S, gt=0)
    poll_s: float = Field(default=DEFAULT_POLL_S, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    retry_base_s: float = Field(default=DEFAULT_RETRY_BASE_S, ge=0)
    retry_max_s: float = Field(default=DEFAULT_RETRY_MAX_S, ge=0)
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    batch_rows: int = Field(default=DEFAULT_BATCH_ROWS, ge=1)
    batch_bytes: int = Field(default=DEFAULT_BATCH_BYTES, ge=1024)
    max_split_parts: int = Field(default=DEFAULT_MAX_SPLIT_PARTS, ge=1)
    # The most sessions one run may read its source with (a configuration's parallelism).
    max_parallelism: int = Field(default=DEFAULT_MAX_PARALLELISM, ge=1, le=64)
    max_selected_rows: int = Field(default=DEFAULT_MAX_SELECTED_ROWS, ge=1)
    download_url_ttl_s: int = Field(
        default=DEFAULT_DOWNLOAD_URL_TTL_S, gt=0, le=MAX_DOWNLOAD_URL_TTL_S
    )
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024)
    log_level: str = "INFO"
    # One line per request costs a status poll about 5% of its CPU: off unless asked for.
    access_log: bool = False
    # Where `egress serve` runs its worker and scheduler: "process", a child forked at start,
    # so an extraction never holds the API's GIL (bench/README.md, polling); "thread", inside
    # the API process, for platforms without fork() or to debug both in one process.
    embedded_worker: Literal["process", "thread"] = "process"
    triggers_per_minute: int = Field(default=DEFAULT_TRIGGERS_PER_MINUTE, ge=1)
    failed_signins_per_minute: int = Field(default=DEFAULT_FAILED_SIGNINS_PER_MINUTE, ge=1)
    max_runs_per_workspace: int = Field(default=DEFAULT_MAX_RUNS_PER_WORKSPACE, ge=1)
    signed_url_ttl_s: int = Field(default=DEFAULT_SIGNED_URL_TTL_S, gt=0, le=7 * 24 * 3600)
    # The base of absolute links Egress hands out (signed URLs), e.g. https://egress.example;
    # unset: the base URL of the request that asked for them.
    public_url: str | None = None
    # Trust boundaries of tenant connections (README "Security model"; sources/policy.py).
    files_roots: str | None = Field(
        default=None, description="comma-separated absolute folders; default <data dir>/sources"
    )
    files_ambient_credentials: bool = False
    source_timeout_s: float = Field(default=DEFAULT_SOURCE_TIMEOUT_S, gt=0)
    source_stall_s: float = Field(default=DEFAULT_SOURCE_STALL_S, gt=0)
    source_pool_size: int = Field(default=DEFAULT_SOURCE_POOL_SIZE, ge=1, le=256)
    catalog_max_depth: int = Field(default=DEFAULT_CATALOG_MAX_DEPTH, ge=1)
    catalog_max_entries: int = Field(default=DEFAULT_CATALOG_MAX_ENTRIES, ge=1)
    connection_deny_hosts: str = DEFAULT_CONNECTION_DENY_HOSTS
    connection_allow_hosts: str | None = None
    # Identity (README "Authentication and roles").
    access_token_ttl_s: int = Field(default=DEFAULT_ACCESS_TOKEN_TTL_S, ge=60, le=24 * 3600)
    revocation_cache_s: float = Field(default=DEFAULT_REVOCATION_CACHE_S, ge=0, le=300)
    # Schedules (README "Schedules and backfill"): per-configuration default limit, how far
    # back a catch-up window may start, and how often a scheduler round runs.
    schedules_limit: int = Field(default=DEFAULT_SCHEDULES_LIMIT, ge=0)
    schedule_max_lateness_s: float = Field(default=DEFAULT_MAX_LATENESS_S, gt=0)
    scheduler_interval_s: float = Field(default=DEFAULT_SCHEDULER_INTERVAL_S, gt=0)
    # Bulk export (seed 003): objects per job, how long a job's fileUrl (and file) lives, and
    # the base of absolute URLs handed out (default: the base URL the request came to).
    export_job_limit: int = Field(default=DEFAULT_EXPORT_JOB_LIMIT, ge=1)
    export_url_ttl_s: int = Field(default=DEFAULT_EXPORT_URL_TTL_S, gt=0)

    @cached_property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir / 'egress.db'}"

    @property
    def resolved_storage_url(self) -> str:
        if self.storage_url:
            return self.storage_url
        return (self.resolved_data_dir / "files").as_uri()

    @property
    def resolved_warehouse_url(self) -> str:
        """Where data tables live: a SQLite file in the data dir unless set."""
        if self.warehouse_url:
            return self.warehouse_url
        return f"sqlite:///{self.resolved_data_dir / 'warehouse.db'}"

    @property
    def secret_key_path(self) -> Path:
        return self.resolved_data_dir / "secret.key"

    @property
    def signing_key_path(self) -> Path:
        return self.resolved_data_dir / "signing.key"

    def ensure_data_dir(self) -> None:
        """The data dir holds every workspace's metadata, secrets and files: only the user Egress
        runs as may enter it (0700), also one an older version created more open."""
        path = self.resolved_data_dir
        path.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
        if path.stat().st_mode & 0o777 != DATA_DIR_MODE:
            path.chmod(DATA_DIR_MODE)
