"""What a run is about, as the runner, the window freezing and the publishing share it: the
job (everything that does not change while a run runs) and each file it wrote."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from egress.db.run_queue import ClaimedRun
from egress.domain.catalog import ColumnInfo
from egress.domain.naming import NameParts, render_file_name, split_label
from egress.domain.plan import ReadPlan
from egress.domain.spec import FrozenWindow
from egress.sinks.file import WrittenFile
from egress.sources import Source
from egress.sources.base import PartitionedSource, Rendering


def copy_rendering(fmt: str, native_csv: bool) -> Rendering | None:
    """How a source's own COPY would write ``fmt`` (None: no COPY writes it)."""
    if native_csv:
        return Rendering.POSTGRES_CSV
    return Rendering(fmt) if fmt in (Rendering.CSV, Rendering.JSONL) else None


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
    notes: tuple[str, ...] = ()  # run warnings of its own (a parallel plan read serially)
    native_csv: bool = False  # csvDialect "postgres": the source's own CSV rendering

    @property
    def rendering(self) -> Rendering | None:
        return copy_rendering(self.fmt, self.native_csv)

    def copies(self, source: Source) -> bool:
        """Whether the rows go through the source's own COPY (CSV, JSONL): always in the
        source's own CSV rendering (the configuration admits it only there), else when the
        source renders Egress's format exactly — a split CSV run too when it can also route
        the rows by its field's values (in one session: a parallel split goes through Arrow),
        a parallel read of one file in one part per session (``engine/parts.py``)."""
        fast = getattr(source, "can_copy", None)
        if self.native_csv:
            if fast is None:
                raise RunFailure("csvDialect 'postgres' needs a PostgreSQL source")
            return True
        rendering = self.rendering
        return (
            rendering is not None
            and (self.plan.parallelism == 1 or self._copies_parts(source))
            and self.data_table is None
            and fast is not None
            and bool(fast(self.plan, rendering))
            and (self.split_by is None or self._copies_split(source))
        )

    def copies_blocks(self, source: Source) -> bool:
        """Whether the one file receives a COPY's own 1 MiB blocks (a parallel read's parts'
        too), uncompressed: its sink then buffers nothing (``FileSink(blocks=True)``), so no
        8 MiB is hashed at once while the socket fills, nor after the COPY at close."""
        return self.compression == "none" and self.split_by is None and self.copies(source)

    def _copies_parts(self, source: Source) -> bool:
        return self.split_by is None and hasattr(source, "copy_partitions")

    def _copies_split(self, source: Source) -> bool:
        split = getattr(source, "can_copy_csv_split", None)
        return self.fmt == "csv" and split is not None and bool(split(self.plan, self.split_by))

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


def with_parallelism(job: Job, source: Source) -> Job:
    """A plan of ``parallelism`` > 1 that its source must read in one session is read so,
    and the run says why (README "Parallel reads")."""
    plan = job.plan
    if plan.parallelism <= 1:
        return job
    if isinstance(source, PartitionedSource):
        reason = source.partition_blocker(plan)
    else:
        reason = "this type of source has no parallel reads"
    if reason is None:
        return job
    note = f"parallelism {plan.parallelism}: read in one session, as {reason}"
    return replace(job, plan=replace(plan, parallelism=1), notes=(*job.notes, note))


def with_split_field(plan: ReadPlan, split_by: str | None) -> ReadPlan:
    """The plan reads the split field even when the files leave it out: the router needs it."""
    if split_by is None or any(f.name == split_by for f in plan.fields):
        return plan
    extra = next(c for c in plan.columns if c.name == split_by)
    return replace(plan, fields=[*plan.fields, extra])
