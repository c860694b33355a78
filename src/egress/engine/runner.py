"""Carry out one claimed run and commit its outcome under the commit protocol (DESIGN §5).

1. Stream the source into files under temporary keys (one per sub-extract when split),
   hashing as they go.
2. On success, record the final keys as pending (fenced by the lease), rename every file to its
   final key (never overwriting), publish the run's manifest, then record status, counts and
   files in one metadata transaction fenced by the lease token. If that fence fails, delete
   what was published again: a zombie never publishes.
3. On any failure or cancellation, delete the temporary files: nothing partial is published.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from egress.crypto import SecretBox
from egress.db.connections import ConnectionRepo
from egress.db.data_tables import DataTableRepo
from egress.db.executions import ClaimedRun, ExecutionRepo, FileRecord, Leftover, Outcome
from egress.domain.clock import Clock
from egress.domain.naming import (
    DEFAULT_FILE_NAME_PATTERN,
    NameParts,
    file_extension,
    name_candidates,
    render_file_name,
    sanitize_segment,
    storage_key,
)
from egress.domain.options import Window
from egress.domain.plan import ReadPlan, plan_from_snapshot
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
from egress.query.select import columns_read, star_query
from egress.sinks.data_table import LoadError, Warehouse
from egress.sinks.file import FileSink, WrittenFile
from egress.sinks.split import SplitRouter, TooManyParts
from egress.sinks.writers import content_type
from egress.sources import Source, SourceError, open_source
from egress.sources.arrow_types import arrow_schema, byte_slices
from egress.sources.base import QuerySource
from egress.sources.policy import SourcePolicy
from egress.storage import STORAGE_ERRORS, DestinationExists, Storage, tmp_key, tmp_prefix

log = logging.getLogger(__name__)

# Upload buffer of a single output file: few, large writes.
FILE_BUFFER_BYTES = 8 << 20
# Per open part of a split run: many may be open at once, so keep each small.
PART_BUFFER_BYTES = 64 << 10
MANIFEST = "manifest.json"


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

    def file_name(self, value: str | None = None, *, split: bool = False) -> str:
        name = self.configuration_name
        if split:
            name = f"{name}_{'null' if value is None else sanitize_segment(value)}"
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
        executions: ExecutionRepo,
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
        self._executions = executions
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
        try:
            try:
                source = self._open_source(claimed)
                control.attach(source.interrupt)
                self._check_columns(job, source, control)
                job = self._with_window(job, source, control)
                window = job.plan.window
                watermark = window.high if window is not None else None
                if window is not None and window.high is None:  # the source is empty
                    self._finish(claimed, Outcome(RunStatus.COMPLETED_NO_DATA, 0))
                    return
                if job.data_table is not None:
                    rows = self._load(job, source, control)
                    status = RunStatus.COMPLETED if rows else RunStatus.COMPLETED_NO_DATA
                    self._finish(claimed, Outcome(status, rows, watermark=watermark))
                    return
                written = self._write(job, source, control)
                control.checkpoint()
                if sum(w.file.rows for w in written) == 0:
                    self._storage.delete_prefix(prefix)
                    outcome = Outcome(RunStatus.COMPLETED_NO_DATA, 0, watermark=watermark)
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
            self._finish(claimed, Outcome(RunStatus.CANCELLED, control.processed))
            return
        except (LeaseLost, RunReleased, RunStalled):
            self._storage.delete_prefix(prefix)
            raise
        except LoadError as exc:
            self._finish(claimed, Outcome(RunStatus.FAILED, control.processed, str(exc)))
            return
        except Exception as exc:  # every failure ends the run with a message a user can act on
            self._storage.delete_prefix(prefix)
            if not isinstance(exc, (SourceError, RunFailure, ValueError, *STORAGE_ERRORS)):
                log.exception("run %s failed unexpectedly", claimed.run_id)
            self._finish(claimed, Outcome(RunStatus.FAILED, control.processed, _message(exc)))
            return
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
            RunStatus.COMPLETED, total, files=files, manifest_key=manifest_key, watermark=watermark
        )
        if not self._executions.finish(claimed, outcome, self._clock()):
            # Our own keys (publishing never overwrites): unpublish, never someone else's.
            for f in files:
                self._storage.delete(f.storage_key)
            self._storage.delete(manifest_key)
            raise LeaseLost

    def _job(self, claimed: ClaimedRun) -> Job:
        cfg = claimed.parameters["configuration"]
        return Job(
            claimed=claimed,
            plan=plan_from_snapshot(claimed.parameters),
            fmt=cfg["format"],
            compression=cfg["compression"],
            ext=file_extension(cfg["format"], cfg["compression"]),
            destination=cfg["destination"].get("path", ""),
            pattern=cfg["fileNamePattern"] or DEFAULT_FILE_NAME_PATTERN,
            configuration_name=cfg["name"],
            split_by=cfg.get("splitBy"),
            data_table=cfg["destination"] if cfg["destination"]["type"] == "dataTable" else None,
        )

    def _check_columns(self, job: Job, source: Source, control: RunControl) -> None:
        """A column the template knows but the table no longer has fails the run up front,
        named, instead of as the driver's error halfway (files check their own columns)."""
        table = job.plan.table
        if table is None or not isinstance(source, QuerySource):
            return
        params = job.claimed.parameters
        cursor = params["template"]["cursorField"] if _incremental(params) else None
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
        """Incremental runs read (watermark, high-water mark]; the window is frozen on the
        execution the first time, so every attempt and re-run reads exactly the same records."""
        params = job.claimed.parameters
        if not _incremental(params):
            return job
        frozen = params.get("window")
        if frozen is None:
            cursor = params["template"]["cursorField"]
            with control.awaiting_source():
                high = source.max_value(job.plan, cursor)
            frozen = {
                "field": cursor,
                "low": self._executions.watermark(job.claimed.configuration_id),
                "high": json_value(high),
            }
            if not self._executions.freeze_window(job.claimed, frozen):
                raise LeaseLost
        window = Window(field=frozen["field"], low=frozen["low"], high=frozen["high"])
        return replace(job, plan=replace(job.plan, window=window))

    def _load(self, job: Job, source: Source, control: RunControl) -> int:
        """Load into the data table in one warehouse transaction, committed only while this
        worker still holds the run's lease."""
        assert job.data_table is not None
        claimed = job.claimed
        primary_key = claimed.parameters["template"]["primaryKey"]
        table = self._data_tables.ensure(
            claimed.workspace_id,
            job.data_table["dataTable"],
            physical_name(claimed.workspace_id, job.data_table["dataTable"]),
            job.plan.fields,
            primary_key if job.data_table["mode"] == "upsert" else [],
        )

        def still_leased() -> None:
            control.checkpoint()
            if not self._executions.holds_lease(claimed, self._clock()):
                raise LeaseLost

        result = self._warehouse.load(
            run_id=claimed.run_id,
            name=table.physical_name,
            fields=job.plan.fields,
            known=table.fields,
            primary_key=table.primary_key,
            mode=job.data_table["mode"],
            batches=self._batches(job, source, control),
            before_commit=still_leased,
            on_rows=control.report,
        )
        merged = {f.name: f for f in table.fields} | {f.name: f for f in job.plan.fields}
        self._data_tables.loaded(table.id, list(merged.values()), result.table_rows)
        return result.rows

    # ----------------------------------------------------------------- writing
    def _sink(self, job: Job, temp_name: str, buffer: int, one_of_many: bool = False) -> FileSink:
        claimed = job.claimed
        return FileSink(
            self._storage,
            tmp_key(claimed.workspace_id, claimed.run_id, claimed.lease_token, temp_name),
            job.fmt,
            job.compression,
            arrow_schema(job.plan.fields),
            buffer,
            one_of_many=one_of_many,
        )

    def _write(self, job: Job, source: Source, control: RunControl) -> list[Written]:
        if job.split_by:
            return self._write_split(job, source, control)
        sink = self._sink(job, job.file_name(), FILE_BUFFER_BYTES)
        try:
            fast = getattr(source, "can_copy_csv", None)
            if job.fmt == "csv" and fast is not None and fast(job.plan):
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
            self._max_parts,
            lambda pid, _value: self._sink(
                job, f"{pid}.{job.ext}", PART_BUFFER_BYTES, one_of_many=True
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
    def _free_key(self, job: Job, name: str, ext: str, taken: set[str]) -> tuple[str, str]:
        claimed = job.claimed
        for candidate in name_candidates(name, ext, claimed.execution_id, claimed.attempt):
            key = storage_key(claimed.workspace_id, job.destination, candidate)
            if key not in taken and not self._storage.exists(key):
                taken.add(key)
                return candidate, key
        raise RunFailure(f"every candidate file name under {job.destination!r} is taken ({name!r})")

    def _publish(self, job: Job, written: list[Written]) -> str:
        """Move every file to a free final key, then publish the manifest; returns its key."""
        taken: set[str] = set()
        split = job.split_by is not None
        for w in written:
            w.name, w.final_key = self._free_key(
                job, job.file_name(w.value, split=split), job.ext, taken
            )
        base = job.file_name().removesuffix(f".{job.ext}")
        _, manifest_key = self._free_key(job, f"{base}.{MANIFEST}", MANIFEST, taken)
        if not self._executions.mark_publishing(job.claimed, sorted(taken)):
            raise LeaseLost
        published: list[str] = []
        try:
            for w in written:
                self._storage.publish(w.temp_key, w.final_key)
                published.append(w.final_key)
            self._storage.put(manifest_key, _manifest(job, written))
        except DestinationExists as exc:
            for key in published:
                self._storage.delete(key)
            raise RunFailure(f"a file appeared at {exc.key!r} while publishing; run again") from exc
        return manifest_key

    # ------------------------------------------------------------------ helpers
    def discard(self, leftover: Leftover) -> None:
        """Remove what a dead attempt left behind: temporary files, unrecorded publications."""
        self._storage.delete_prefix(
            tmp_prefix(leftover.workspace_id, leftover.run_id, leftover.lease_token)
        )
        for key in leftover.publishing_keys:
            if not self._executions.is_referenced(key):
                self._storage.delete(key)

    def _open_source(self, claimed: ClaimedRun) -> Source:
        record = self._connections.get(claimed.workspace_id, claimed.parameters["connection"]["id"])
        return open_source(
            record.type, record.settings, self._box.open(record.sealed_secrets), self._policy
        )

    def _finish(self, claimed: ClaimedRun, outcome: Outcome) -> None:
        if not self._executions.finish(claimed, outcome, self._clock()):
            raise LeaseLost


def _incremental(parameters: dict[str, Any]) -> bool:
    return bool(parameters.get("options", {}).get("extractOnlyNew"))


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
    params = job.claimed.parameters
    body = {
        "configuration": params["configuration"],
        "template": {"id": params["template"]["id"], "name": params["template"]["name"]},
        "executionId": job.claimed.execution_id,
        "run": job.claimed.run_number,
        "startedAt": job.claimed.started_at.isoformat(),
        "parameters": params.get("options", {}),
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


def _message(exc: BaseException) -> str:
    if isinstance(exc, SourceError | RunFailure | ValueError):
        return str(exc)
    if isinstance(exc, pa.ArrowException):
        return f"data conversion failed: {exc}"
    if isinstance(exc, STORAGE_ERRORS):
        return f"storage error: {exc}"
    return f"internal error ({type(exc).__name__}): {exc}"
