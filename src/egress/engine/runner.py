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

Freezing an incremental window is `engine/windows.py`, choosing final names and publishing
is `engine/publish.py`; both work on the run's `engine/job.Job`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pyarrow as pa

from egress.arrow_memory import return_freed_memory
from egress.crypto import SecretBox
from egress.db.connections import ConnectionRepo
from egress.db.data_tables import DataTableRepo
from egress.db.executions import FileRecord
from egress.db.run_queue import ClaimedRun, Leftover, Outcome, RunQueue
from egress.domain.clock import Clock
from egress.domain.data_tables import (
    UPSERT,
    Loading,
    loading_conflict,
    physical_name,
    system_column_clash,
)
from egress.domain.export import WAREHOUSE
from egress.domain.naming import DEFAULT_FILE_NAME_PATTERN, file_extension
from egress.domain.plan import ReadPlan, plan_from_snapshot
from egress.domain.spec import POSTGRES_DIALECT
from egress.domain.split import ALL, split_field_problem
from egress.domain.status import RunStatus
from egress.engine.control import (
    LeaseLost,
    RunCancelled,
    RunControl,
    RunInterrupted,
    RunReleased,
    RunStalled,
)
from egress.engine.drift import dropped_columns_named
from egress.engine.export import ExportParts, run_export, warehouse_source
from egress.engine.faults import TransientFailure, failure_message, is_transient
from egress.engine.job import Job, RunFailure, Written, with_parallelism, with_split_field
from egress.engine.leftovers import Cleanup
from egress.engine.parts import write_parted, writes_in_parts
from egress.engine.publish import publish
from egress.engine.read_ahead import read_ahead
from egress.engine.split_copy import write_split_copy
from egress.engine.system_columns import with_system_columns, with_system_fields
from egress.engine.windows import with_window
from egress.sinks.data_table import LoadError, Warehouse
from egress.sinks.file import FileSink
from egress.sinks.split import SplitRouter, TooManyParts
from egress.sinks.writers import DictionaryChoice, content_type
from egress.sources import Source, SourceError, open_source
from egress.sources.arrow_types import arrow_schema, byte_slices
from egress.sources.base import (
    Noticing,
    PartitionedSource,
    ReusesSessions,
    RowEstimates,
)
from egress.sources.policy import SourcePolicy
from egress.sources.session_cache import SessionCache
from egress.storage import STORAGE_ERRORS, Storage, tmp_key

log = logging.getLogger(__name__)

# Upload buffer of a single output file: few, large writes.
FILE_BUFFER_BYTES = 8 << 20
# Per open part of a split run: many may be open at once, so keep each small.
PART_BUFFER_BYTES = 64 << 10


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
        cleanup: Cleanup,
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
        # What a failed or lost attempt leaves in storage; the worker's reaper retries it.
        self.cleanup = cleanup
        # Idle source sessions, reused by the next run of the same connection (an export
        # chain's jobs): a new session was a fixed cost of every job (issue 17).
        self._sessions = SessionCache()

    def close(self) -> None:
        """The worker stops: the idle source sessions end."""
        self._sessions.close()

    # ------------------------------------------------------------------ one run
    def execute(self, claimed: ClaimedRun, control: RunControl) -> None:
        """Run to an outcome. Raises RunReleased/RunStalled/LeaseLost without committing
        anything (the worker gives the run back, fails the attempt, or lets it go)."""
        source: Source | None = None
        try:
            try:
                source = self._open_source(claimed)
                control.attach(source.interrupt)
                if claimed.export is not None:
                    outcome = run_export(
                        claimed, claimed.export, source, control, self._export_parts(claimed)
                    )
                else:
                    outcome = self._extract(claimed, source, control)
            except Exception as exc:
                if isinstance(source, ReusesSessions):  # a failed run's session is not reused
                    source.drop_sessions()
                if not isinstance(exc, RunInterrupted):
                    # A driver call that fails because it was interrupted fails for the
                    # reason it was interrupted for, not with the driver's message.
                    control.checkpoint()
                raise
        except RunCancelled:
            self._clean(claimed)
            self._finish(claimed, Outcome.stopped(RunStatus.CANCELLED, control.processed), control)
            return
        except (LeaseLost, RunReleased, RunStalled):
            self._clean(claimed)
            raise
        except LoadError as exc:
            stopped = Outcome.stopped(RunStatus.FAILED, control.processed, str(exc))
            self._finish(claimed, stopped, control)
            return
        except Exception as exc:  # every failure ends the run with a message a user can act on
            self._clean(claimed)
            if is_transient(exc):
                raise TransientFailure(failure_message(exc)) from exc
            if not isinstance(exc, (SourceError, RunFailure, ValueError, *STORAGE_ERRORS)):
                log.exception("run %s failed unexpectedly", claimed.run_id)
            stopped = Outcome.stopped(RunStatus.FAILED, control.processed, failure_message(exc))
            self._finish(claimed, stopped, control)
            return
        finally:
            if source is not None:
                source.close()  # ends a snapshot transaction a failed run left open
            return_freed_memory()
        recorded = self._record(claimed, outcome, control)
        if recorded is not outcome.status:  # lost the lease, or cancelled meanwhile
            # What we published (publishing never overwrites), unless the attempt that
            # replaced us has published under the same names since.
            keys = [f.storage_key for f in outcome.files]
            if outcome.manifest_key is not None:
                keys.append(outcome.manifest_key)
            self._clean(claimed, keys)
            if recorded is None:
                raise LeaseLost

    def _extract(self, claimed: ClaimedRun, source: Source, control: RunControl) -> Outcome:
        """An extraction: its files published (or its data table loaded); the outcome."""
        job = self._job(claimed)
        with dropped_columns_named(job, source, control):
            # Before the window: whether a partitioned read follows decides the snapshot's
            # session.
            job = with_parallelism(job, source)
            job = with_window(job, source, control, self._queue, self._clock)
            window = job.plan.window
            if window is not None and window.high is None:  # nothing to take (yet)
                return Outcome(
                    RunStatus.COMPLETED_NO_DATA, 0, warnings=[*job.notes, *_warnings(source)]
                )
            self._estimate(job, source, control)
            if job.data_table is not None:
                rows = self._load(job, source, control)
                status = RunStatus.COMPLETED if rows else RunStatus.COMPLETED_NO_DATA
                return Outcome(
                    status,
                    rows,
                    warnings=[*job.notes, *_warnings(source)],
                    window=job.window,
                )
            written = self._write(job, source, control)
            control.checkpoint()
            if sum(w.file.rows for w in written) == 0:
                self._clean(claimed)
                return Outcome(
                    RunStatus.COMPLETED_NO_DATA,
                    0,
                    warnings=[*job.notes, *_warnings(source)],
                    window=job.window,
                )
            manifest_key = publish(self._storage, self._queue, self.cleanup, job, written)
            self._clean(claimed)  # its files moved out; the empty folders go too
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
            return Outcome(
                RunStatus.COMPLETED,
                sum(f.record_count for f in files),
                files=files,
                manifest_key=manifest_key,
                warnings=[*job.notes, *_warnings(source)],
                window=job.window,
            )

    def _export_parts(self, claimed: ClaimedRun) -> ExportParts:
        return ExportParts(
            self._storage,
            self._queue,
            lambda: self._clean(claimed),
            self._batches,
            FILE_BUFFER_BYTES,
        )

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
            native_csv=cfg.csv_dialect == POSTGRES_DIALECT,
        )

    def _estimate(self, job: Job, source: Source, control: RunControl) -> None:
        """The source's estimate of the rows the run reads, recorded for its progress (a
        client's percentage and ETA) with the first heartbeat, or the outcome of a run shorter
        than one (a transaction of its own cost every tiny run a commit); a source that cannot
        say leaves it unknown."""
        if not isinstance(source, RowEstimates):
            return
        with control.awaiting_source():
            control.estimated_rows = source.estimate_rows(job.plan)

    def _load(self, job: Job, source: Source, control: RunControl) -> int:
        """Load into the data table in one warehouse transaction, committed only while this
        worker still holds the run's lease."""
        assert job.data_table is not None
        claimed = job.claimed
        template = claimed.spec.template
        name, mode = job.data_table["dataTable"], job.data_table["mode"]
        fields, batches = job.plan.fields, self._batches(job.plan, source, control)
        cfg = claimed.spec.configuration
        if cfg.system_columns:
            if clash := system_column_clash([f.name for f in fields]):
                raise RunFailure(clash)
            fields = with_system_fields(fields)
            batches = with_system_columns(batches, cfg.account, self._clock())
        wanted = Loading(
            mode,
            template.primary_key if mode == UPSERT else [],
            template.id,
            template.name,
        )
        # Checked when the configuration was saved; checked here, before the table is recorded,
        # for one saved before that rule or whose template changed since.
        self._warehouse.refuse_unholdable_columns(physical_name(claimed.workspace_id, name), fields)
        table = self._data_tables.ensure(
            claimed.workspace_id,
            name,
            physical_name(claimed.workspace_id, name),
            fields,
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
            fields=fields,
            known=table.fields,
            primary_key=table.primary_key,
            mode=mode,
            batches=batches,
            before_commit=still_leased,
            on_rows=control.report,
        )
        # Recorded as the columns the table has once committed (not those of a failed first
        # attempt, nor without those another load committed meanwhile), read under the
        # catalogue row's lock; its rows counted once this load has committed (and again
        # under the lock when another load recorded more).
        physical = table.physical_name
        self._data_tables.loaded(
            table.id,
            fields,
            self._warehouse.row_count(physical),
            template.id,
            columns=lambda: self._warehouse.columns(physical),
            recount=lambda: self._warehouse.row_count(physical),
        )
        return result.rows

    # ----------------------------------------------------------------- writing
    def _sink(
        self,
        job: Job,
        temp_name: str,
        buffer: int,
        name: str,
        dictionary: DictionaryChoice | None = None,
        **options: bool,
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
            dictionary=dictionary,
            **options,  # one_of_many (a split's part), encoded (parts of a parallel read)
        )

    def _write(self, job: Job, source: Source, control: RunControl) -> list[Written]:
        if job.split_by:
            return self._write_split(job, source, control)
        in_parts, blocks = writes_in_parts(job, source), job.copies_blocks(source)
        name = job.file_name()
        sink = self._sink(job, name, FILE_BUFFER_BYTES, name, encoded=in_parts, blocks=blocks)
        try:
            if in_parts:
                file = write_parted(sink, job, source, control, self._batch_rows, self._batch_bytes)
            elif job.copies(source):
                with control.awaiting_source():
                    rows = source.copy_rows(  # type: ignore[attr-defined]
                        job.plan, sink.stream, control.report, job.rendering
                    )
                file = sink.close(rows)
            else:
                for batch in self._batches(job.plan, source, control):
                    sink.write(batch)
                    control.report(sink.rows)
                file = sink.close()
        except BaseException:
            sink.abort()
            raise
        return [Written(ALL, None, sink.key, file)]

    def _write_split(self, job: Job, source: Source, control: RunControl) -> list[Written]:
        assert job.split_by is not None
        field = next(f for f in job.plan.fields if f.name == job.split_by)
        if (problem := split_field_problem(field.type)) is not None:  # the template changed
            raise RunFailure(f"cannot split by {job.split_by!r}: {problem}")
        dictionary = DictionaryChoice()
        router = SplitRouter(
            job.split_by,
            [f.name for f in job.output],
            self._max_parts,
            lambda pid, value: self._sink(
                job,
                f"{pid}.{job.ext}",
                PART_BUFFER_BYTES,
                job.file_name(value, split=True),
                dictionary,
                one_of_many=True,
            ),
            flush_rows=self._batch_rows,
        )
        rows = 0
        try:
            if job.copies(source):
                return write_split_copy(job, source, control, router)
            for grouped in self._batches(job.plan, source, control, router.group):
                router.write(grouped)
                rows += sum(part.num_rows for _value, part in grouped)
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

    def _batches(
        self,
        plan: ReadPlan,
        source: Source,
        control: RunControl,
        prepare: Callable[[pa.RecordBatch], Any] = lambda batch: batch,
    ) -> Iterator[Any]:
        """The source's batches, none over the byte bound (a source that could only bound its
        own roughly is sliced here), each passed through ``prepare`` (a split's grouping of
        rows by value), all on the reading thread(s), one ahead of the writing; the stall
        limit runs while waiting for each one."""
        if plan.parallelism > 1 and isinstance(source, PartitionedSource):
            with control.awaiting_source():  # the snapshot's sessions are opened here
                streams = source.read_partitions(plan, self._batch_rows, self._batch_bytes)
        else:
            streams = [source.read(plan, self._batch_rows, self._batch_bytes)]

        def prepared(stream: Iterator[pa.RecordBatch]) -> Iterator[Any]:
            try:
                for batch in stream:
                    for piece in byte_slices(batch, self._batch_bytes):
                        yield prepare(piece)
            finally:  # on the reading thread, which read_ahead closes this on
                close = getattr(stream, "close", None)
                if close is not None:
                    close()

        # One item read ahead per stream: each partition's session keeps streaming.
        ahead = read_ahead(
            [prepared(s) for s in streams], control.awaiting_source, depth=len(streams)
        )
        with contextlib.closing(ahead):
            yield from ahead

    # ------------------------------------------------------------------ helpers
    def _clean(self, claimed: ClaimedRun, published: list[str] | None = None) -> None:
        """The attempt's temporary files, and the keys it ``published`` without recording
        them, deleted now or recorded for the reaper: a store failing here must not stop the
        attempt from recording its outcome."""
        leftover = Leftover(
            claimed.run_id, claimed.workspace_id, claimed.lease_token, published or []
        )
        self.cleanup.now_or_later(leftover)

    def _open_source(self, claimed: ClaimedRun) -> Source:
        ref, policy = claimed.spec.connection, self._policy
        if ref.type == WAREHOUSE:  # an export of a data table
            template = claimed.spec.template
            source = warehouse_source(
                self._warehouse, policy, template.source_table, template.fields
            )
        else:  # the connection as the claim read it, else read now
            record = claimed.connection or self._connections.get(claimed.workspace_id, ref.id)
            source = open_source(
                record.type, record.settings, self._box.open(record.sealed_secrets), policy
            )
        if isinstance(source, ReusesSessions):
            source.reuse_sessions(self._sessions, ref.id)
        return source

    def _record(
        self, claimed: ClaimedRun, outcome: Outcome, control: RunControl
    ) -> RunStatus | None:
        """Record the outcome, with the row estimate when the run ended before a heartbeat
        could record it (``RunControl.estimated_rows``)."""
        outcome = replace(outcome, estimated_rows=control.estimated_rows)
        return self._queue.finish(claimed, outcome, self._clock())

    def _finish(self, claimed: ClaimedRun, outcome: Outcome, control: RunControl) -> None:
        if not self._record(claimed, outcome, control):
            raise LeaseLost


def _warnings(source: Source) -> list[str]:
    return source.warnings() if isinstance(source, Noticing) else []
