"""A column the template knows but the source table no longer has (issue 13, item 20): the run
fails naming it, instead of with the driver's error."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from egress.engine.control import RunControl
from egress.engine.job import Job, RunFailure
from egress.query.select import columns_read, star_query
from egress.sources import Source
from egress.sources.base import QuerySource, SourceError

# SQLite reads a quoted name it does not know as a string: a dropped column is not refused,
# it reads as its own name. Its runs are checked before they read.
_READS_UNKNOWN_NAMES = frozenset({"sqlite"})


def check_columns(job: Job, source: Source, control: RunControl) -> None:
    """RunFailure naming the columns the run reads that the table lacks (files sources check
    their own columns)."""
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


@contextlib.contextmanager
def dropped_columns_named(job: Job, source: Source, control: RunControl) -> Iterator[None]:
    """Run the body; when the source refuses it, check the columns: a dropped one fails the
    run named. A query that reads a dropped column fails before its first row (PostgreSQL,
    MySQL), so only a failed run pays for the check (up front, it cost each run a describe:
    four round trips of a tiny run). The source's own error stands when the check finds
    nothing or cannot run."""
    if isinstance(source, QuerySource) and source.dialect in _READS_UNKNOWN_NAMES:
        check_columns(job, source, control)
        yield
        return
    try:
        yield
    except SourceError:
        control.checkpoint()  # an interrupted run ends for the reason it was interrupted
        with contextlib.suppress(SourceError):
            check_columns(job, source, control)
        raise
