"""Carry out one claimed run and commit its outcome under the commit protocol (DESIGN §5).

1. Stream the source into a file under a temporary key, hashing as it goes.
2. On success, rename it to its final key, then record status, counts and file in one
   metadata transaction fenced by the lease token. If the fence fails (the lease was lost),
   delete the file again: a zombie never publishes.
3. On any failure or cancellation, delete the temporary file: nothing partial is published.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa

from egress.crypto import SecretBox
from egress.db.connections import ConnectionRepo
from egress.db.executions import ClaimedRun, ExecutionRepo, FileRecord, Leftover, Outcome
from egress.domain.clock import Clock
from egress.domain.naming import (
    DEFAULT_FILE_NAME_PATTERN,
    NameParts,
    file_extension,
    name_candidates,
    render_file_name,
    storage_key,
)
from egress.domain.plan import ReadPlan, plan_from_snapshot
from egress.domain.status import RunStatus
from egress.engine.control import LeaseLost, RunCancelled, RunControl, RunReleased
from egress.sinks.stream import HashingStream
from egress.sinks.writers import WRITERS, content_type
from egress.sources import Source, SourceError, open_source
from egress.sources.arrow_types import arrow_schema
from egress.storage import DestinationExists, Storage, tmp_key, tmp_prefix

log = logging.getLogger(__name__)

# Buffer between the format writers and storage: fewer, larger writes.
WRITE_BUFFER_BYTES = 1 << 20
ALL = "all"


@dataclass(frozen=True)
class WrittenFile:
    rows: int
    size: int
    sha256: str


class RunFailure(Exception):
    """A run cannot complete for a reason the user can act on (not the source's fault)."""


class Runner:
    def __init__(
        self,
        connections: ConnectionRepo,
        executions: ExecutionRepo,
        storage: Storage,
        secret_box: SecretBox,
        clock: Clock,
        batch_rows: int,
    ) -> None:
        self._connections = connections
        self._executions = executions
        self._storage = storage
        self._box = secret_box
        self._clock = clock
        self._batch_rows = batch_rows

    def execute(self, claimed: ClaimedRun, control: RunControl) -> None:
        """Run to an outcome. Raises RunReleased/LeaseLost without committing anything."""
        params = claimed.parameters
        cfg = params["configuration"]
        fmt, compression = cfg["format"], cfg["compression"]
        ext = file_extension(fmt, compression)
        name = render_file_name(
            cfg["fileNamePattern"] or DEFAULT_FILE_NAME_PATTERN,
            NameParts(
                configuration_name=cfg["name"],
                started_at=claimed.started_at,
                run=claimed.run_number,
                ext=ext,
                execution_id=claimed.execution_id,
            ),
        )
        destination = cfg["destination"]["path"]
        temp_key = tmp_key(claimed.run_id, claimed.lease_token, name)
        try:
            plan = plan_from_snapshot(params)
            source = self._open_source(claimed)
            written = self._write(source, plan, fmt, compression, temp_key, control)
            control.checkpoint()
            if written.rows == 0:
                self._storage.delete(temp_key)
                self._finish(claimed, Outcome(RunStatus.COMPLETED_NO_DATA, 0))
                return
            name, final_key = self._publish(claimed, temp_key, destination, name, ext)
        except RunCancelled:
            self._storage.delete(temp_key)
            self._finish(claimed, Outcome(RunStatus.CANCELLED, control.processed))
            return
        except (LeaseLost, RunReleased):
            self._storage.delete(temp_key)
            raise
        except Exception as exc:  # every failure ends the run with a message a user can act on
            self._storage.delete(temp_key)
            if not isinstance(exc, SourceError | RunFailure | ValueError | OSError):
                log.exception("run %s failed unexpectedly", claimed.run_id)
            self._finish(claimed, Outcome(RunStatus.FAILED, control.processed, _message(exc)))
            return
        file = FileRecord(
            sub_extract_id=ALL,
            sub_extract_value=None,
            storage_key=final_key,
            file_name=name,
            content_type=content_type(fmt, compression),
            size_bytes=written.size,
            sha256=written.sha256,
            record_count=written.rows,
        )
        if not self._executions.finish(
            claimed, Outcome(RunStatus.COMPLETED, written.rows, files=[file]), self._clock()
        ):
            self._storage.delete(final_key)  # our own unique key: unpublish, never someone else's
            raise LeaseLost

    def _publish(
        self, claimed: ClaimedRun, temp_key: str, destination: str, name: str, ext: str
    ) -> tuple[str, str]:
        """Move the finished file to the first free final name; never overwrite one."""
        for candidate in name_candidates(name, ext, claimed.execution_id, claimed.attempt):
            key = storage_key(destination, candidate)
            if not self._executions.mark_publishing(claimed, key):
                raise LeaseLost
            try:
                self._storage.publish(temp_key, key)
            except DestinationExists:
                continue
            return candidate, key
        raise RunFailure(f"every candidate file name under {destination!r} is taken ({name!r})")

    def discard(self, leftover: Leftover) -> None:
        """Remove what a dead attempt left behind: temporary files, an unrecorded publication."""
        for obj in self._storage.list(tmp_prefix(leftover.run_id, leftover.lease_token)):
            self._storage.delete(obj.key)
        key = leftover.publishing_key
        if key is not None and not self._executions.is_referenced(key):
            self._storage.delete(key)

    def _open_source(self, claimed: ClaimedRun) -> Source:
        record = self._connections.get(claimed.workspace_id, claimed.parameters["connection"]["id"])
        return open_source(record.type, record.settings, self._box.open(record.sealed_secrets))

    def _finish(self, claimed: ClaimedRun, outcome: Outcome) -> None:
        if not self._executions.finish(claimed, outcome, self._clock()):
            raise LeaseLost

    def _write(
        self,
        source: Source,
        plan: ReadPlan,
        fmt: str,
        compression: str,
        key: str,
        control: RunControl,
    ) -> WrittenFile:
        raw = self._storage.open_writer(key)
        hashing = HashingStream(raw)
        buffered = io.BufferedWriter(hashing, WRITE_BUFFER_BYTES)  # type: ignore[type-var]
        out: BinaryIO = buffered
        if compression == "gzip":
            out = gzip.GzipFile(fileobj=buffered, mode="wb", mtime=0)  # type: ignore[assignment]
        try:
            fast = getattr(source, "can_copy_csv", None)
            if fmt == "csv" and fast is not None and fast(plan):
                rows = source.copy_csv(plan, out, control.report)  # type: ignore[attr-defined]
            else:
                rows = self._write_batches(source, plan, fmt, out, control)
            if out is not buffered:
                out.close()
            buffered.flush()
        finally:
            raw.close()
        return WrittenFile(rows=rows, size=hashing.size, sha256=hashing.sha256)

    def _write_batches(
        self, source: Source, plan: ReadPlan, fmt: str, out: BinaryIO, control: RunControl
    ) -> int:
        writer = WRITERS[fmt](out, arrow_schema(plan.fields))
        rows = 0
        batches = source.read(plan, self._batch_rows)
        with contextlib.closing(batches):  # type: ignore[type-var]
            for batch in batches:
                writer.write(batch)
                rows += batch.num_rows
                control.report(rows)
        writer.close()
        return rows


def _message(exc: BaseException) -> str:
    if isinstance(exc, SourceError | RunFailure | ValueError):
        return str(exc)
    if isinstance(exc, pa.ArrowException):
        return f"data conversion failed: {exc}"
    if isinstance(exc, OSError):
        return f"storage error: {exc}"
    return f"internal error ({type(exc).__name__}): {exc}"
