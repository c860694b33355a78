"""SQLAlchemy Core tables. Every row carries its workspace; every query filters by it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = sa.String(36)


def _workspace_fk() -> sa.Column[str]:
    return sa.Column("workspace_id", ID, sa.ForeignKey("workspaces.id"), nullable=False)


workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", ID, primary_key=True),
    _workspace_fk(),
    sa.Column("name", sa.String(200), nullable=False),
    # HMAC-SHA256 (hex) of the token under signing key `key_id`: a copied database alone
    # cannot confirm a guessed token. NULL `key_id`: a plain sha256 from before 0007, replaced
    # by an HMAC the first time the token is used.
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    # A personal access token (egp_) acts for its creator — a user, client or token
    # (Subject.type/id/name) — and never with more than the creator's current role. NULL: a
    # token an operator made with `egress admin create-token` (egr_).
    sa.Column("creator_type", sa.String(10), nullable=True),
    sa.Column("creator_id", sa.String(36), nullable=True),
    sa.Column("creator_name", sa.String(320), nullable=True),
)

# People. An email is one user across workspaces; `not_before`: access tokens issued before it
# no longer count, in any workspace (set on a password reset).
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=True),  # argon2id; NULL: none set yet
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("not_before", UTCDateTime(), nullable=True),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("workspace_id", ID, sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("user_id", ID, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    # The workspace's own not-before (a role change, a re-invitation): the user's access tokens
    # of this workspace issued before it no longer count; their other workspaces' still do.
    sa.Column("not_before", UTCDateTime(), nullable=True),
)

# OAuth 2.0 clients, each bound to one workspace and role. `secret_hash` (HMAC under signing key
# `key_id`, like tokens) is NULL for a public client (a browser app using PKCE).
oauth_clients = sa.Table(
    "oauth_clients",
    metadata,
    sa.Column("id", ID, primary_key=True),
    _workspace_fk(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=True),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("redirect_uris", sa.JSON(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)

# Authorization codes (stored as HMACs, used once) and refresh tokens: a refresh rotates into
# a new token of the same `family_id`; presenting a used one revokes the whole family.
oauth_codes = sa.Table(
    "oauth_codes",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("client_id", ID, sa.ForeignKey("oauth_clients.id"), nullable=False),
    sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("redirect_uri", sa.String(2000), nullable=False),
    sa.Column("scope", sa.String(200), nullable=False),
    sa.Column("code_challenge", sa.String(128), nullable=False),
    sa.Column("code_challenge_method", sa.String(10), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("used_at", UTCDateTime(), nullable=True),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("family_id", ID, nullable=False, index=True),
    sa.Column("client_id", ID, sa.ForeignKey("oauth_clients.id"), nullable=False),
    sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("scope", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("used_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)

connections = sa.Table(
    "connections",
    metadata,
    sa.Column("id", ID, primary_key=True),
    _workspace_fk(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("settings", sa.JSON(), nullable=False),
    sa.Column("secrets", sa.Text(), nullable=True),  # Fernet token, never returned
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
)

templates = sa.Table(
    "templates",
    metadata,
    sa.Column("id", ID, primary_key=True),
    _workspace_fk(),
    sa.Column(
        "connection_id", ID, sa.ForeignKey("connections.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.String(400), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # discovered | custom
    # '' when the template reads `query`: making the column nullable would rebuild this
    # table on SQLite, which configurations reference.
    sa.Column("source_table", sa.String(400), nullable=False),
    # The table read, as parts (NULL for a SQL template; a files template: its path as the
    # name, no schema). ``source_table`` is only their shown form.
    sa.Column("source_schema", sa.String(400), nullable=True),
    sa.Column("source_name", sa.String(1000), nullable=True),
    sa.Column("query", sa.Text(), nullable=True),  # a SQL template's SELECT (admins only)
    sa.Column("fields", sa.JSON(), nullable=False),
    sa.Column("primary_key", sa.JSON(), nullable=False),
    sa.Column("cursor_field", sa.String(200), nullable=True),
    sa.Column("date_field", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # A custom CSV template's NULL spellings, instead of its connection's (NULL: the connection's).
    sa.Column("csv_null_values", sa.JSON(), nullable=True),
    sa.UniqueConstraint("workspace_id", "connection_id", "name"),
)

extraction_configurations = sa.Table(
    "extraction_configurations",
    metadata,
    sa.Column("id", ID, primary_key=True),
    _workspace_fk(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("template_id", ID, sa.ForeignKey("templates.id"), nullable=False),
    sa.Column("fields", sa.JSON(), nullable=True),
    sa.Column("format", sa.String(20), nullable=False),
    sa.Column("compression", sa.String(20), nullable=False),
    sa.Column("destination", sa.JSON(), nullable=False),
    sa.Column("file_name_pattern", sa.String(400), nullable=True),
    sa.Column("split_by", sa.String(200), nullable=True),
    # Defaults for run options; a trigger's own values override them.
    sa.Column("filter", sa.Text(), nullable=True),
    sa.Column("extract_only_new", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("date_from", sa.String(40), nullable=True),
    sa.Column("date_to", sa.String(40), nullable=True),
    # Incremental extraction: the highest cursor value a completed run has delivered.
    sa.Column("watermark", sa.JSON(), nullable=True),
    # Seconds a cursor value must have been seen before a run takes it (None: the source's
    # default); and what the next run builds on: the last snapshot (PostgreSQL) or the
    # cursor maxima runs saw, with when (every other source).
    sa.Column("incremental_lag", sa.Float(), nullable=True),
    sa.Column("incremental_state", sa.JSON(), nullable=True),
    sa.Column("start_date", UTCDateTime(), nullable=True),
    sa.Column("end_date", UTCDateTime(), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # The account (schema, MySQL database, folder) it reads; its structured filter as given
    # (compiled into `filter`); free-form parameters kept for the client; and whether its
    # data-table loads add the system columns (account_id, account_name, __insert_date).
    sa.Column("account", sa.String(400), nullable=True),
    sa.Column("conditions", sa.JSON(), nullable=True),
    sa.Column("additional_params", sa.JSON(), nullable=True),
    sa.Column("system_columns", sa.Boolean(), nullable=True),  # NULL: false
    # Schedules and backfill (issue 16): NULL limit means EGRESS_SCHEDULES_LIMIT; the backfill
    # covers [sync_historical_data, today) in backfill_window windows; paused stops both.
    sa.Column("schedules_limit", sa.Integer(), nullable=True),
    sa.Column("sync_historical_data", sa.String(10), nullable=True),
    sa.Column("backfill_window", sa.String(10), nullable=False, server_default="month"),
    sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
    # Sessions reading key ranges of one snapshot (issue 19); NULL: 1.
    sa.Column("parallelism", sa.Integer(), nullable=True),
    # How CSV files render values: NULL is Egress's own rendering, 'postgres' PostgreSQL's.
    sa.Column("csv_dialect", sa.String(20), nullable=True),
    sa.UniqueConstraint("workspace_id", "name"),
)

# A configuration's schedules, with the state the scheduler advances: ``next_due_at`` is the
# next slot (indexed: a round reads only what is due), ``window_end`` where the previous date
# window ended, ``gaps`` what max lateness left uncovered.
schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("id", ID, primary_key=True),
    _workspace_fk(),
    sa.Column(
        "configuration_id", ID, sa.ForeignKey("extraction_configurations.id"), nullable=False
    ),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("cron", sa.String(200), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("date_window", sa.String(20), nullable=True),
    sa.Column("next_due_at", UTCDateTime(), nullable=True),
    sa.Column("last_due_at", UTCDateTime(), nullable=True),
    sa.Column("last_fired_at", UTCDateTime(), nullable=True),
    sa.Column("window_end", UTCDateTime(), nullable=True),
    sa.Column("gaps", sa.JSON(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_schedules_next_due_at", "next_due_at"),
    sa.Index("ix_schedules_configuration_id", "configuration_id"),
)

executions = sa.Table(
    "executions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    _workspace_fk(),
    sa.Column(
        "configuration_id", ID, sa.ForeignKey("extraction_configurations.id"), nullable=False
    ),
    # Frozen snapshot of the configuration, template and run options: re-runs reuse it.
    sa.Column("parameters", sa.JSON(), nullable=False),
    sa.Column("trigger", sa.String(20), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("request_hash", sa.String(64), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    # Who triggered it: {"type", "id", "name"} (NULL before 0017: shown as the system).
    sa.Column("triggered_by", sa.JSON(), nullable=True),
    # A scheduled or backfill execution's slot: the schedule (``backfill`` for a backfill
    # window), when it was due (a backfill window's start), where its window ends, and whether
    # it caught up missed slots. The unique index makes each slot fire once, whoever fires it.
    sa.Column("schedule_id", sa.String(36), nullable=True),
    sa.Column("due_at", UTCDateTime(), nullable=True),
    sa.Column("window_end", UTCDateTime(), nullable=True),
    sa.Column("catch_up", sa.Boolean(), nullable=True),
    sa.UniqueConstraint("workspace_id", "configuration_id", "idempotency_key"),
    sa.Index("ix_executions_configuration_created", "configuration_id", "created_at"),
    sa.Index("uq_executions_slot", "configuration_id", "schedule_id", "due_at", unique=True),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", ID, primary_key=True),
    _workspace_fk(),
    # NULL for an export job, which has no execution: its request (``requests``) holds it.
    sa.Column("execution_id", ID, sa.ForeignKey("executions.id"), nullable=True),
    # An export job's: the request's own id (so the per-configuration rules never meet).
    sa.Column("configuration_id", ID, nullable=False),
    sa.Column("run_number", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("queued_at", UTCDateTime(), nullable=False),
    sa.Column("process_id", sa.String(200), nullable=True),
    sa.Column("lease_token", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    sa.Column("record_count", sa.BigInteger(), nullable=True),
    sa.Column("processed", sa.BigInteger(), nullable=True),
    sa.Column("estimated_rows", sa.BigInteger(), nullable=True),  # the source's estimate
    sa.Column("progress_at", UTCDateTime(), nullable=True),
    sa.Column("cancel_requested", sa.Boolean(), nullable=False),
    sa.Column("error_message", sa.Text(), nullable=True),
    sa.Column("manifest_key", sa.String(1000), nullable=True),
    sa.Column("warnings", sa.JSON(), nullable=True),  # what the run noticed (files sources)
    # Idempotency-Key of the re-run that created this run (run 1 uses the execution's key).
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    # What the run does (domain.status.RunKind): every kind shares this queue.
    sa.Column("kind", sa.String(20), nullable=False, server_default="extract"),
    # A run waiting for a retry after a transient failure is not claimed before this.
    sa.Column("not_before", UTCDateTime(), nullable=True),
    # Whether the failure that ended the last attempt was transient (None: no failure).
    sa.Column("retryable", sa.Boolean(), nullable=True),
    # Why an ON_HOLD run waits (NULL: behind its configuration's active run).
    sa.Column("hold_reason", sa.String(400), nullable=True),
    # The user an export job counts against (``<subject type>:<id>``); NULL for extractions.
    sa.Column("owner", sa.String(200), nullable=True),
    sa.UniqueConstraint("execution_id", "run_number"),
    sa.UniqueConstraint("execution_id", "idempotency_key"),
    # The invariant lives in the database, not only in Python checks that can race.
    sa.Index(
        "uq_runs_one_active_per_configuration",
        "configuration_id",
        unique=True,
        sqlite_where=sa.text("status IN ('PENDING', 'IN_PROGRESS')"),
        postgresql_where=sa.text("status IN ('PENDING', 'IN_PROGRESS')"),
    ),
    # Seed 003: one export job Pending or InProgress per user, under any number of API
    # replicas and simultaneous requests (NULL owners, i.e. extractions, never collide).
    sa.Index(
        "uq_runs_one_active_per_owner",
        "owner",
        unique=True,
        sqlite_where=sa.text("status IN ('PENDING', 'ON_HOLD', 'IN_PROGRESS')"),
        postgresql_where=sa.text("status IN ('PENDING', 'ON_HOLD', 'IN_PROGRESS')"),
    ),
    sa.Index("ix_runs_status_queued", "status", "queued_at"),
)

# Requests as the seed-003 face (and later seed 002) hands them out: an id the client polls,
# mapped to the run doing the work, with who asked and what the work returned.
requests = sa.Table(
    "requests",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # export-<uuid>
    _workspace_fk(),
    sa.Column("kind", sa.String(20), nullable=False),  # the run's kind
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), nullable=False, unique=True),
    sa.Column("object", sa.String(400), nullable=True),
    sa.Column("spec", sa.JSON(), nullable=True),  # an export job's ExportSpec
    # What the job returned: an export's next cursor position (``after``), or null at the end.
    sa.Column("result", sa.JSON(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_requests_owner_created", "workspace_id", "owner", "created_at"),
)

run_files = sa.Table(
    "run_files",
    metadata,
    sa.Column("id", ID, primary_key=True),
    _workspace_fk(),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("sub_extract_id", sa.String(200), nullable=False),
    sa.Column("sub_extract_value", sa.Text(), nullable=True),
    sa.Column("storage_key", sa.String(1000), nullable=False),
    sa.Column("file_name", sa.String(400), nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("size_bytes", sa.BigInteger(), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("record_count", sa.BigInteger(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("run_id", "sub_extract_id"),
)

# The outbox: one row per run status change (and per run created, ``from_status`` NULL), in the
# transaction that made it; webhooks and progress streams read it in ``id`` order.
run_events = sa.Table(
    "run_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    _workspace_fk(),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("from_status", sa.String(20), nullable=True),
    sa.Column("to_status", sa.String(20), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Index("ix_run_events_run", "run_id"),
)

# Keys a worker is about to publish: the reaper deletes them if the worker dies mid-way.
pending_publications = sa.Table(
    "pending_publications",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("storage_key", sa.String(1000), primary_key=True),
)

# What an attempt left in storage that could not be deleted when it ended (the store failed,
# or the attempt died): its temporary prefix and the keys it was publishing. The reaper deletes
# them, retrying while the store fails, and only then the row. No foreign key: the objects
# outlive a run deleted with its configuration.
storage_leftovers = sa.Table(
    "storage_leftovers",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("run_id", ID, nullable=False),
    sa.Column("workspace_id", ID, nullable=False),
    sa.Column("lease_token", sa.String(64), nullable=False),
    sa.Column("storage_keys", sa.JSON(), nullable=False),
    sa.Column("tries", sa.Integer(), nullable=False),
    sa.Column("next_try_at", UTCDateTime(), nullable=False),
    sa.Index("ix_storage_leftovers_next_try", "next_try_at"),
)

# Managed tables in the warehouse database; `physical_name` is unique across workspaces.
data_tables = sa.Table(
    "data_tables",
    metadata,
    sa.Column("id", ID, primary_key=True),
    _workspace_fk(),
    sa.Column("name", sa.String(63), nullable=False),
    sa.Column("physical_name", sa.String(63), nullable=False, unique=True),
    sa.Column("fields", sa.JSON(), nullable=False),
    sa.Column("primary_key", sa.JSON(), nullable=False),
    # The template it is loaded from (NULL: created before this was recorded; its next load
    # records it). Not a foreign key: the table outlives a deleted template.
    sa.Column("template_id", ID, nullable=True),
    sa.Column("row_count", sa.BigInteger(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
)

# The audit trail: append-only (no code path updates or deletes a row). ``workspace_id`` NULL:
# a failed sign-in whose credential names no workspace.
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("workspace_id", ID, sa.ForeignKey("workspaces.id"), nullable=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor_type", sa.String(20), nullable=False),
    sa.Column("actor_id", sa.String(64), nullable=True),
    sa.Column("actor_name", sa.String(200), nullable=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("object_type", sa.String(40), nullable=True),
    sa.Column("object_id", sa.String(200), nullable=True),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("source_address", sa.String(64), nullable=True),
    sa.Column("detail", sa.JSON(), nullable=True),
    sa.Index("ix_audit_events_workspace_at", "workspace_id", "at"),
)

# Token buckets of the fair-use limits, shared by every API replica: ``tokens`` left at
# ``updated_at`` (refilled by time when next read).
rate_buckets = sa.Table(
    "rate_buckets",
    metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("tokens", sa.Float(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)
