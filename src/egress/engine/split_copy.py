"""A split CSV run through the source's own COPY, where the unsplit run would take it: one
pass, each row to its value's file (the source routes the rows; the router names and opens
the parts exactly as on the Arrow path)."""

from __future__ import annotations

from egress.engine.control import RunControl
from egress.engine.job import Job, Written
from egress.sinks.split import SplitRouter
from egress.sources import Source


def write_split_copy(
    job: Job, source: Source, control: RunControl, router: SplitRouter
) -> list[Written]:
    """Every part's file written and closed; the caller aborts them on failure."""
    assert job.split_by is not None
    with control.awaiting_source():
        counts = source.copy_csv_split(  # type: ignore[attr-defined]
            job.plan,
            job.split_by,
            [f.name for f in job.output],
            lambda value: router.part(value).sink.stream,
            control.report,
        )
    # The COPY's values are text (or NULL), each its own canonical value: the key of its part.
    return [
        Written(p.sub_extract_id, p.value, p.sink.key, p.sink.close(counts[p.value]))
        for p in router.parts.values()
    ]
