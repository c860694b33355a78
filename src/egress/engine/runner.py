"""Carry out one claimed run and commit its outcome under the commit protocol (DESIGN §5).

1. Stream the source into files under temporary keys (one per sub-extract when split),
   hashing as they go.
2. On success, record the final keys as pending (fenced by the lease), rename every file to its
   final key (never overwriting), publish the run's manifest, then record status, counts and
   files in one metadata transaction fenced by the lease token. If that fence fails, delete
   what was published again: a zombie never publishes.
3. On any failure or cancellation, delete the temporary files: nothing partial is published.
   A transient failure (engine/faults.py) raises TransientFailure for the worker to try the run
   again later; any other failure ends the run FAILED.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa

from egress.crypto import SecretBox
from egress.db.connections import ConnectionRepo
from egress.db.data_tables import DataTableRepo
from egress.db.executions import FileRecord
from egress.db.run_queue import ClaimedRun, Leftover, Outcome, RunQueue
from egress.domain.catalog import ColumnInfo
from egress.domain.clock import Clock
from egress.domain.data_tables import UPSERT, Loading, loading_conflict
from egress.domain.incremental import (
    DEFAULT_LAGS,
    Observation,
    ServerClock,
    kept_observations,
    lagged_mark,
    later,
)
from egress.domain.naming import (
    DEFAULT_FILE_NAME_PATTERN,
    NameParts,
    file_extension,
    manifest_name,
    name_candidates,
    render_file_name,
    split_label,
    storage_key,
    varies_per_run,
)
from egress.domain.options import Window
from egress.domain.plan import ReadPlan, plan_from_snapshot
from egress.domain.spec import ExecutionSpec, FrozenWindow, SnapshotMark
from egress.domain.split import ALL
from egress.domain.status import RunStatus
from egress.engine.control import (
    LeaseLost,
    RunCancelled,
    RunControl,
    RunInterrupted,
    RunReleased,
    RunStalled,
)
from egress.engine.faults import TransientFailure, is_transient
from egress.query.select import columns_read, star_query
from egress.sinks.data_table import LoadError, Warehouse
from egress.sinks.file import FileSink, WrittenFile
from egress.sinks.split import SplitRouter, TooManyParts
from egress.sinks.writers import content_type
from egress.sources import Source, SourceError, open_source
from egress.sources.arrow_types import arrow_schema, byte_slices
from egress.sources.base import Noticing, OpenTransactionsSource, QuerySource, SnapshotSource
from egress.sources.policy import SourcePolicy
from egress.storage import (
    STORAGE_ERRORS,
    DestinationExists,
    ObjectHeaders,
    Storage,
    tmp_key,
    tmp_prefix,
)

log = logging.getLogger(__name__)

# Upload buffer of a single output file: few, large writes.
FILE_BUFFER_BYTES = 8 << 20
# Per open part of a split run: many may be open at once, so keep each small.
PART_BUFFER_BYTES = 64 << 10


class RunFailure(Exception):
    """A run cannot complete for a reason the user can act on (not the source's fault)."""


@dataclass
class Written:
    """One finished temporary file and what it becomes."""

    sub_extract_id: str
    value: str | None
    temp_key: str
    file: WrittenFile
    name: str = ""
    final_key: str = ""


@dataclass(frozen=True)
class Job:
    """Everything about one run that does not change while it runs."""

    claimed: ClaimedRun
    plan: ReadPlan
    fmt: str
    compression: str
    ext: str
    destination: str
    pattern: str
    configuration_name: str
    split_by: str | None
    data_table: dict[str, Any] | None
    output: list[ColumnInfo]  # the configuration's fields: what the files hold
    window: FrozenWindow | None = None  # the frozen incremental window

    def copies_csv(self, source: Source) -> bool:
        """Whether the rows go through the source's own CSV writer (one file, CSV)."""
        fast = getattr(source, "can_copy_csv", None)
        return (
            self.fmt == "csv"
            and self.split_by is None
            and self.data_table is None
            and fast is not None
            and bool(fast(self.plan))
        )

    def file_name(self, value: str | None = None, *, split: bool = False) -> str:
        name = self.configuration_name
        if split:
            name = f"{name}_{split_label(value)}"
        return render_file_name(
            self.pattern,
            NameParts(
                configuration_name=name,
                started_at=self.claimed.started_at,
                run=self.claimed.run_number,
                ext=self.ext,
                execution_id=self.claimed.execution_id,
            ),
        )


class Runner:
    def __init__(
        self,
        connections: ConnectionRepo,
        queue: RunQueue,
        storage: Storage,
        data_tables: DataTableRepo,
        warehouse: Warehouse,
        secret_box: SecretBox,
        policy: SourcePolicy,
        clock: Clock,
        batch_rows: int,
        batch_bytes: int,
        max_split_parts: int,
    ) -> None:
        self._connections = connections
        self._queue = queue
        self._storage = storage
        self._data_tables = data_tables
        self._warehouse = warehouse
        self._box = secret_box
        self._policy = policy
        self._clock = clock
        self._batch_rows = batch_rows
        self._batch_bytes = batch_bytes
        self._max_parts = max_split_parts

    # ------------------------------------------------------------------ one run
    def execute(self, claimed: ClaimedRun, control: RunControl) -> None:
        """Run to an outcome. Raises RunReleased/RunStalled/LeaseLost without committing
        anything (the worker gives the run back, fails the attempt, or lets it go)."""
        job = self._job(claimed)
        prefix = tmp_prefix(claimed.workspace_id, claimed.run_id, claimed.lease_token)
        source: Source | None = None
        try:
            try:
                source = self._open_source(claimed)
                control.attach(source.interrupt)
                self._check_columns(job, source, control)
                job = self._with_window(job, source, control)
                window = job.plan.window
                watermark = window.high if window is not None else None
                if window is not None and window.high is None:  # nothing to take (yet)
                    self._finish(claimed, Outcome(RunStatus.COMPLETED_NO_DATA, 0))
                    return
                if job.data_table is not None:
                    rows = self._load(job, source, control)
                    status = RunStatus.COMPLETED if rows else RunStatus.COMPLETED_NO_DATA
                    outcome = Outcome(
                        status,
                        rows,
                        watermark=watermark,
                        warnings=_warnings(source),
                        window=job.window,
                    )
                    self._finish(claimed, outcome)
                    return
                written = self._write(job, source, control)
                control.checkpoint()
                if sum(w.file.rows for w in written) == 0:
                    self._storage.delete_prefix(prefix)
                    outcome = Outcome(
                        RunStatus.COMPLETED_NO_DATA,
                        0,
                        watermark=watermark,
                        warnings=_warnings(source),
                        window=job.window,
                    )
                    self._finish(claimed, outcome)
                    return
            except Exception as exc:
                if not isinstance(exc, RunInterrupted):
                    # A driver call that fails because it was interrupted fails for the
                    # reason it was interrupted for, not with the driver's message.
                    control.checkpoint()
                raise
            manifest_key = self._publish(job, written)
            self._storage.delete_prefix(prefix)  # its files moved out; the empty folders go too
        except RunCancelled:
            self._storage.delete_prefix(prefix)
            self._finish(claimed, Outcome.stopped(RunStatus.CANCELLED, control.processed))
            return
        except (LeaseLost, RunReleased, RunStalled):
            self._storage.delete_prefix(prefix)
            raise
        except LoadError as exc:
            self._finish(claimed, Outcome.stopped(RunStatus.FAILED, control.processed, str(exc)))
            return
        except Exception as exc:  # every failure ends the run with a message a user can act on
            self._storage.delete_prefix(prefix)
            if is_transient(exc):
                raise TransientFailure(_message(exc)) from exc
            if not isinstance(exc, (SourceError, RunFailure, ValueError, *STORAGE_ERRORS)):
                log.exception("run %s failed unexpectedly", claimed.run_id)
            self._finish(
                claimed, Outcome.stopped(RunStatus.FAILED, control.processed, _message(exc))
            )
            return
        finally:
            if source is not None:
                source.close()  # ends a snapshot transaction a failed run left open
        files = [
            FileRecord(
                sub_extract_id=w.sub_extract_id,
                sub_extract_value=w.value,
                storage_key=w.final_key,
                file_name=w.name,
                content_type=content_type(job.fmt, job.compression),
                size_bytes=w.file.size,
                sha256=w.file.sha256,
                record_count=w.file.rows,
            )
            for w in written
        ]
        total = sum(f.record_count for f in files)
        outcome = Outcome(
            RunStatus.COMPLETED,
            total,
            files=files,
            manifest_key=manifest_key,
            watermark=watermark,
            warnings=_warnings(source),
            window=job.window,
        )
        if not self._queue.finish(claimed, outcome, self._clock()):
            # Our own keys (publishing never overwrites): unpublish, never someone else's.
            for f in files:
                self._storage.delete(f.storage_key)
            self._storage.delete(manifest_key)
            raise LeaseLost

    def _job(self, claimed: ClaimedRun) -> Job:
        cfg = claimed.spec.configuration
        plan = plan_from_snapshot(claimed.spec)
        return Job(
            claimed=claimed,
            plan=with_split_field(plan, cfg.split_by),
            fmt=cfg.format,
            compression=cfg.compression,
            ext=file_extension(cfg.format, cfg.compression),
            destination=cfg.folder,
            pattern=cfg.file_name_pattern or DEFAULT_FILE_NAME_PATTERN,
            configuration_name=cfg.name,
            split_by=cfg.split_by,
            data_table=cfg.data_table,
            output=plan.fields,
        )

    def _check_columns(self, job: Job, source: Source, control: RunControl) -> None:
        """A column the template knows but the table no longer has fails the run up front,
        named, instead of as the driver's error halfway (files check their own columns)."""
        table = job.plan.table
        if table is None or not isinstance(source, QuerySource):
            return
        spec = job.claimed.spec
        cursor = spec.template.cursor_field if spec.incremental else None
        with control.awaiting_source():
            present = {c.name for c in source.describe(star_query(table, source.dialect))}
        missing = [name for name in columns_read(job.plan, cursor) if name not in present]
        if missing:
            raise RunFailure(
                f"the source table {table.display} no longer has the column(s) "
                f"{', '.join(map(repr, missing))} this run reads; listing the connection's "
                "templates refreshes a discovered template (then choose the configuration's "
                "fields again), a custom template must be recreated"
            )

    def _with_window(self, job: Job, source: Source, control: RunControl) -> Job:
        """Incremental runs read (watermark, mark]; the window is frozen on the execution the
        first time, so every attempt and re-run reads exactly the same records."""
        spec = job.claimed.spec
        if not spec.incremental:
            return job
        frozen = spec.window
        within = None
        if frozen is None:
            frozen = self._freeze_window(job, source, control)
        elif frozen.snapshot is not None:  # read again outside that snapshot: only its rows
            within = frozen.snapshot.snapshot
        window = Window(
            field=frozen.field,
            low=frozen.low,
            high=frozen.high,
            after=frozen.snapshot.after if frozen.snapshot else None,
            within=within,
        )
        return replace(job, plan=replace(job.plan, window=window), window=frozen)

    def _freeze_window(self, job: Job, source: Source, control: RunControl) -> FrozenWindow:
        """PostgreSQL tables: the mark and the rows in one snapshot, plus the rows committed
        behind the previous mark since the previous snapshot. Every other source: the mark the
        source already held ``incrementalLag`` ago (README "Incremental extraction")."""
        claimed = job.claimed
        cursor = claimed.spec.template.cursor_field
        assert cursor is not None  # checked when triggered: only new records need a cursor
        state = self._queue.incremental_state(claimed.configuration_id)
        mark = None
        if isinstance(source, SnapshotSource):
            with control.awaiting_source():
                mark = source.begin_snapshot(job.plan, cursor, copy_csv=job.copies_csv(source))
        observations = None
        if mark is not None:
            late = state.snapshot is not None and not state.quiet
            frozen = FrozenWindow(
                cursor,
                state.watermark,
                json_value(mark.high),
                SnapshotMark(
                    snapshot=mark.snapshot,
                    quiet=mark.quiet,
                    previous_snapshot=state.snapshot,
                    # The late-commit scan reads every row at or below the mark: skipped when
                    # nothing was in progress in the previous snapshot.
                    after=state.snapshot if late else None,
                ),
            )
        else:
            lag = run_lag(claimed.spec)
            with control.awaiting_source():
                seen, clock = _max_and_clock(source, job.plan, cursor)
            now = self._clock()
            server_at, oldest = (None, None) if clock is None else (clock.now, clock.oldest_open)
            observations = state.observations
            if seen is not None:
                observed = [*observations, Observation(now, json_value(seen), server_at)]
                observations = kept_observations(observed, now, lag, oldest)
            high = lagged_mark(observations, now, lag, oldest)
            if state.watermark is not None and (high is None or not later(high, state.watermark)):
                high = state.watermark  # nothing new is old enough yet
            frozen = FrozenWindow(cursor, state.watermark, high, lag=lag.total_seconds())
        if not self._queue.freeze_window(claimed, frozen, observations):
            raise LeaseLost
        return frozen

    def _load(self, job: Job, source: Source, control: RunControl) -> int:
        """Load into the data table in one warehouse transaction, committed only while this
        worker still holds the run's lease."""
        assert job.data_table is not None
        claimed = job.claimed
        template = claimed.spec.template
        name, mode = job.data_table["dataTable"], job.data_table["mode"]
        wanted = Loading(
            mode,
            template.primary_key if mode == UPSERT else [],
            template.id,
            template.name,
        )
        table = self._data_tables.ensure(
            claimed.workspace_id,
            name,
            physical_name(claimed.workspace_id, name),
            job.plan.fields,
            wanted.primary_key,
            template.id,
        )
        # Checked when the configuration was saved; checked again here, as another
        # configuration's first load, or a template whose key changed, may have come between.
        existing = Loading(
            table.mode,
            table.primary_key,
            table.template_id,
            template.name if table.template_id == template.id else table.template_id or "",
        )
        if conflict := loading_conflict(name, existing, wanted):
            raise LoadError(conflict)

        def still_leased() -> None:
            control.checkpoint()
            if not self._queue.holds_lease(claimed, self._clock()):
                raise LeaseLost

        result = self._warehouse.load(
            run_id=claimed.run_id,
            name=table.physical_name,
            fields=job.plan.fields,
            known=table.fields,
            primary_key=table.primary_key,
            mode=mode,
            batches=self._batches(job, source, control),
            before_commit=still_leased,
            on_rows=control.report,
        )
        merged = {f.name: f for f in table.fields} | {f.name: f for f in job.plan.fields}
        self._data_tables.loaded(table.id, list(merged.values()), result.table_rows, template.id)
        return result.rows

    # ----------------------------------------------------------------- writing
    def _sink(
        self, job: Job, temp_name: str, buffer: int, name: str, one_of_many: bool = False
    ) -> FileSink:
        claimed = job.claimed
        return FileSink(
            self._storage,
            tmp_key(claimed.workspace_id, claimed.run_id, claimed.lease_token, temp_name),
            job.fmt,
            job.compression,
            arrow_schema(job.output),
            buffer,
            name,
            one_of_many=one_of_many,
        )

    def _write(self, job: Job, source: Source, control: RunControl) -> list[Written]:
        if job.split_by:
            return self._write_split(job, source, control)
        sink = self._sink(job, job.file_name(), FILE_BUFFER_BYTES, job.file_name())
        try:
            if job.copies_csv(source):
                with control.awaiting_source():
                    rows = source.copy_csv(job.plan, sink.stream, control.report)  # type: ignore[attr-defined]
                file = sink.close(rows)
            else:
                for batch in self._batches(job, source, control):
                    sink.write(batch)
                    control.report(sink.rows)
                file = sink.close()
        except BaseException:
            sink.abort()
            raise
        return [Written(ALL, None, sink.key, file)]

    def _write_split(self, job: Job, source: Source, control: RunControl) -> list[Written]:
        assert job.split_by is not None
        router = SplitRouter(
            job.split_by,
            [f.name for f in job.output],
            self._max_parts,
            lambda pid, value: self._sink(
                job,
                f"{pid}.{job.ext}",
                PART_BUFFER_BYTES,
                job.file_name(value, split=True),
                one_of_many=True,
            ),
            flush_rows=self._batch_rows,
        )
        rows = 0
        try:
            for batch in self._batches(job, source, control):
                router.write(batch)
                rows += batch.num_rows
                control.report(rows)
            router.close()
            return [
                Written(p.sub_extract_id, p.value, p.sink.key, p.sink.close())
                for p in router.parts.values()
            ]
        except BaseException as exc:
            for part in router.parts.values():
                part.sink.abort()
            if isinstance(exc, TooManyParts):
                raise RunFailure(str(exc)) from exc
            raise

    def _batches(self, job: Job, source: Source, control: RunControl) -> Any:
        """The source's batches, none over the byte bound (a source that could only bound its
        own roughly is sliced here); the stall limit runs while waiting for each one."""
        batches = source.read(job.plan, self._batch_rows, self._batch_bytes)
        with contextlib.closing(batches):  # type: ignore[type-var]
            while True:
                with control.awaiting_source():
                    batch = next(batches, None)
                if batch is None:
                    return
                yield from byte_slices(batch, self._batch_bytes)

    # --------------------------------------------------------------- publishing
    def _final_names(self, job: Job, written: list[Written]) -> str:
        """Give every file its final name and key, all from the same candidate (the rendered
        names, else each with the execution's short id, else also the attempt), the first one
        under which no key is taken; returns the manifest's key."""
        claimed = job.claimed
        per_run = varies_per_run(job.pattern)

        def candidates(name: str) -> list[str]:
            return name_candidates(
                name, job.ext, claimed.execution_id, claimed.attempt, per_run=per_run
            )

        def key(name: str) -> str:
            return storage_key(claimed.workspace_id, job.destination, name)

        split = job.split_by is not None
        files = [candidates(job.file_name(w.value, split=split)) for w in written]
        runs = candidates(job.file_name())
        for i, base in enumerate(runs):
            names = [options[i] for options in files]
            keys = [key(n) for n in names] + [key(manifest_name(base))]
            if len(set(keys)) == len(keys) and not any(map(self._storage.exists, keys)):
                for w, name in zip(written, names, strict=True):
                    w.name, w.final_key = name, key(name)
                return keys[-1]
        where = f" under {job.destination!r}" if job.destination else ""
        if not per_run:
            raise RunFailure(
                f"a file of this run already exists{where} ({runs[0]!r}): the file name pattern "
                f"{job.pattern!r} gives every run the same names; add {{executionStartUtc}}, "
                "or {executionId} and {run}"
            )
        raise RunFailure(f"every candidate file name{where} is taken ({runs[0]!r})")

    def _publish(self, job: Job, written: list[Written]) -> str:
        """Move every file to a free final key, then publish the manifest; returns its key."""
        manifest_key = self._final_names(job, written)
        manifest_name = manifest_key.rsplit("/", 1)[-1]
        taken = [w.final_key for w in written] + [manifest_key]
        if not self._queue.mark_publishing(job.claimed, sorted(taken)):
            raise LeaseLost
        published: list[str] = []
        try:
            for w in written:
                self._storage.publish(w.temp_key, w.final_key)
                published.append(w.final_key)
            self._storage.put(
                manifest_key,
                _manifest(job, written),
                ObjectHeaders("application/json", manifest_name),
            )
        except Exception as exc:  # publish all or nothing: what this attempt moved goes again
            for key in published:
                with contextlib.suppress(*STORAGE_ERRORS):  # the failure may be the store's own
                    self._storage.delete(key)
            if isinstance(exc, DestinationExists):
                raise RunFailure(
                    f"a file appeared at {exc.key!r} while publishing; run again"
                ) from exc
            raise
        return manifest_key

    # ------------------------------------------------------------------ helpers
    def discard(self, leftover: Leftover) -> None:
        """Remove what a dead attempt left behind: temporary files, unrecorded publications."""
        self._storage.delete_prefix(
            tmp_prefix(leftover.workspace_id, leftover.run_id, leftover.lease_token)
        )
        for key in leftover.publishing_keys:
            if not self._queue.is_referenced(key):
                self._storage.delete(key)

    def _open_source(self, claimed: ClaimedRun) -> Source:
        record = self._connections.get(claimed.workspace_id, claimed.spec.connection.id)
        return open_source(
            record.type, record.settings, self._box.open(record.sealed_secrets), self._policy
        )

    def _finish(self, claimed: ClaimedRun, outcome: Outcome) -> None:
        if not self._queue.finish(claimed, outcome, self._clock()):
            raise LeaseLost


def with_split_field(plan: ReadPlan, split_by: str | None) -> ReadPlan:
    """The plan reads the split field even when the files leave it out: the router needs it."""
    if split_by is None or any(f.name == split_by for f in plan.fields):
        return plan
    extra = next(c for c in plan.columns if c.name == split_by)
    return replace(plan, fields=[*plan.fields, extra])


def run_lag(spec: ExecutionSpec) -> timedelta:
    """The run's incrementalLag: its own (frozen with its options), else its source's default."""
    seconds = spec.options.incremental_lag
    if seconds is not None:
        return timedelta(seconds=seconds)
    return DEFAULT_LAGS[spec.connection.type]


def _max_and_clock(source: Source, plan: ReadPlan, field: str) -> tuple[Any, ServerClock | None]:
    """The cursor's maximum, with the server's clock where the source shows open transactions."""
    if isinstance(source, OpenTransactionsSource):
        return source.max_value_and_clock(plan, field)
    return source.max_value(plan, field), None


def physical_name(workspace_id: str, name: str) -> str:
    """Warehouse table of a workspace's data table: distinct per workspace, a valid identifier."""
    return f"dt_{workspace_id.replace('-', '')[:12]}_{name}"[:63]


def json_value(value: Any) -> Any:
    """A cursor value as it is stored in JSON and bound back into queries."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)  # Decimal, UUID, …: their text form sorts and casts back


def _manifest(job: Job, written: list[Written]) -> bytes:
    spec = job.claimed.spec
    body = {
        "configuration": spec.configuration.to_json(),
        "template": {"id": spec.template.id, "name": spec.template.name},
        "executionId": job.claimed.execution_id,
        "run": job.claimed.run_number,
        "startedAt": job.claimed.started_at.isoformat(),
        "parameters": spec.options.to_json(),
        "window": asdict(job.plan.window) if job.plan.window else None,
        "files": [
            {
                "name": w.name,
                "key": w.final_key,
                "subExtractId": w.sub_extract_id,
                "subExtractValue": w.value,
                "recordCount": w.file.rows,
                "bytes": w.file.size,
                "sha256": w.file.sha256,
            }
            for w in written
        ],
    }
    return json.dumps(body, indent=2, ensure_ascii=False).encode()


def _warnings(source: Source) -> list[str]:
    return source.warnings() if isinstance(source, Noticing) else []


def _message(exc: BaseException) -> str:
    if isinstance(exc, SourceError | RunFailure | ValueError):
        return str(exc)
    if isinstance(exc, pa.ArrowException):
        return f"data conversion failed: {exc}"
    if isinstance(exc, STORAGE_ERRORS):
        return f"storage error: {exc}"
    return f"internal error ({type(exc).__name__}): {exc}"
