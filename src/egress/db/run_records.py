"""What the run queue hands to workers and takes back from them: a claimed run, a heartbeat's
answer, a run's outcome, what the reaper found, and what an attempt left in storage."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from egress.db.executions import FileRecord
from egress.domain.export import ExportSpec
from egress.domain.spec import ExecutionSpec, FrozenWindow
from egress.domain.status import RunKind, RunStatus


@dataclass(frozen=True)
class SourceConnection:
    """The run's connection as its claim read it: reading it in a statement of its own was a
    round trip and a pool checkout of every run (issue 19)."""

    type: str
    settings: dict[str, Any]
    sealed_secrets: str | None


@dataclass(frozen=True)
class ClaimedRun:
    run_id: str
    workspace_id: str
    execution_id: str
    configuration_id: str
    run_number: int
    kind: RunKind
    attempt: int
    lease_token: str
    process_id: str
    started_at: datetime
    spec: ExecutionSpec  # an export job's: what its request reads and how it writes it
    export: ExportSpec | None = None  # set for a run of kind export
    # None: the runner reads it (an export job's, or a connection deleted since the trigger).
    connection: SourceConnection | None = None


@dataclass(frozen=True)
class Heartbeat:
    alive: bool  # False: the lease is gone; the worker must stop and commit nothing
    cancel_requested: bool


@dataclass(frozen=True)
class Outcome:
    status: RunStatus
    record_count: int | None  # records delivered; None for a run that delivered nothing
    error_message: str | None = None
    files: list[FileRecord] = field(default_factory=list)
    manifest_key: str | None = None
    warnings: list[str] = field(default_factory=list)
    processed: int | None = None  # records read, when they differ from those delivered
    # Incremental runs: the configuration's watermark moves to the window's high on success,
    # never back. A snapshot window (PostgreSQL): the watermark and snapshot move together, and
    # only from the state the window was built on (a re-run of an older execution moves nothing).
    window: FrozenWindow | None = None
    retryable: bool | None = None  # a FAILED outcome: whether its failure was transient
    result: dict[str, Any] | None = None  # recorded on the run's request (an export's cursor)
    # The source's estimate of the rows read (RunControl.estimated_rows); None: leave it be.
    estimated_rows: int | None = None

    @classmethod
    def stopped(
        cls, status: RunStatus, processed: int, error_message: str | None = None
    ) -> Outcome:
        """A failed or cancelled run delivered nothing: its record count is 0 (a number, as the
        seed API's shape has it) and what it read stays its progress. A run fails through an
        outcome only for a terminal reason (transient ones go back to the queue first)."""
        retryable = False if status is RunStatus.FAILED else None
        return cls(status, 0, error_message, processed=processed, retryable=retryable)

    def cancelled(self) -> Outcome:
        """This success undone by a cancel that came while it published: what it read stays."""
        read = self.processed if self.processed is not None else self.record_count
        stopped = Outcome.stopped(RunStatus.CANCELLED, read or 0)
        return replace(stopped, estimated_rows=self.estimated_rows)


@dataclass(frozen=True)
class Leftover:
    """What a dead attempt may have left in storage: its temporary files, a half-published key."""

    run_id: str
    workspace_id: str
    lease_token: str
    publishing_keys: list[str]


@dataclass(frozen=True)
class ReapCounts:
    requeued: int
    failed: int
    cancelled: int = 0


@dataclass(frozen=True)
class Attempt:
    """An IN_PROGRESS run's attempt as the row said when it was locked."""

    run_id: str
    lease_token: str
    attempt: int
    cancel_requested: bool
    configuration_id: str
