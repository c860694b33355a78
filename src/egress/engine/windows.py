"""Freezing an incremental run's window (README "Incremental extraction"): the first attempt
fixes (watermark, mark] on the execution, so every attempt and re-run reads the same records.

PostgreSQL tables take the mark and the rows in one snapshot; every other source takes the
mark it already held ``incrementalLag`` ago, by the pure rules of ``domain/incremental.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from egress.db.run_queue import RunQueue
from egress.domain.clock import Clock
from egress.domain.incremental import (
    DEFAULT_LAGS,
    Observation,
    ServerClock,
    cursor_problem,
    cursor_value,
    endless_mark_problem,
    held_back_by,
    kept_observations,
    lagged_mark,
    later,
    numeric_cursor,
)
from egress.domain.options import Window
from egress.domain.plan import ReadPlan
from egress.domain.spec import ExecutionSpec, FrozenWindow, SnapshotMark
from egress.engine.control import LeaseLost, RunControl
from egress.engine.job import Job, RunFailure
from egress.sources import Source
from egress.sources.base import (
    CollatingSource,
    CursorNullsSource,
    OpenTransactionsSource,
    SnapshotSource,
)


def with_window(
    job: Job, source: Source, control: RunControl, queue: RunQueue, clock: Clock
) -> Job:
    """Incremental runs read (watermark, mark]; the window is frozen on the execution the
    first time, so every attempt and re-run reads exactly the same records."""
    spec = job.claimed.spec
    if not spec.incremental:
        return job
    frozen = spec.window
    within = None
    notes: tuple[str, ...] = ()
    if frozen is None:
        frozen, notes = freeze_window(job, source, control, queue, clock)
    elif frozen.snapshot is not None:  # read again outside that snapshot: only its rows
        within = frozen.snapshot.snapshot
    if frozen.keeps_watermark:
        notes = (*notes, kept_watermark_note(spec.options.narrowed_by))
    logical = job.plan.column_type(frozen.field)
    window = Window(
        field=frozen.field,
        low=cursor_value(frozen.low, logical),
        high=cursor_value(frozen.high, logical),
        after=frozen.snapshot.after if frozen.snapshot else None,
        within=within,
    )
    return replace(
        job, plan=replace(job.plan, window=window), window=frozen, notes=(*job.notes, *notes)
    )


def freeze_window(
    job: Job, source: Source, control: RunControl, queue: RunQueue, clock: Clock
) -> tuple[FrozenWindow, tuple[str, ...]]:
    """PostgreSQL tables: the mark and the rows in one snapshot, plus the rows committed
    behind the previous mark since the previous snapshot. Every other source: the mark the
    source already held ``incrementalLag`` ago (README "Incremental extraction"). With it,
    the run's warning when an open transaction held the mark back."""
    claimed = job.claimed
    cursor = claimed.spec.template.cursor_field
    assert cursor is not None  # checked when triggered: only new records need a cursor
    problem = cursor_problem(job.plan.column_type(cursor))
    if problem is not None:  # a template made before the rule
        raise RunFailure(f"the cursorField {cursor!r} cannot take only new records: {problem}")
    state = queue.incremental_state(claimed.configuration_id)
    numeric = numeric_cursor(job.plan.column_type(cursor))
    is_later = _comparison(source, job.plan, cursor, numeric)
    keeps = bool(claimed.spec.options.narrowed_by)
    mark = None
    if isinstance(source, SnapshotSource):
        with control.awaiting_source():
            mark = source.begin_snapshot(job.plan, cursor, by_copy=job.copies(source))
        if mark is not None:
            _refuse_endless(cursor, mark.high, numeric)
    observations = None
    notes: tuple[str, ...] = ()
    if mark is not None:
        late = state.snapshot is not None and not state.quiet
        high = json_value(mark.high)
        if state.watermark is not None and (high is None or not is_later(high, state.watermark)):
            high = state.watermark  # nothing past the mark in the source's order
        frozen = FrozenWindow(
            cursor,
            state.watermark,
            high,
            SnapshotMark(
                snapshot=mark.snapshot,
                quiet=mark.quiet,
                previous_snapshot=state.snapshot,
                # The late-commit scan reads every row at or below the mark: skipped when
                # nothing was in progress in the previous snapshot.
                after=state.snapshot if late else None,
            ),
            numeric=numeric,
            keeps_watermark=keeps,
        )
    else:
        lag = run_lag(claimed.spec)
        with control.awaiting_source():
            seen, server = _max_and_clock(source, job.plan, cursor)
        _refuse_endless(cursor, seen, numeric)
        now = clock()
        server_at, oldest = (None, None) if server is None else (server.now, server.oldest_open)
        observations = state.observations
        if seen is not None:
            observed = [*observations, Observation(now, json_value(seen), server_at)]
            observations = kept_observations(observed, now, lag, oldest)
        high = lagged_mark(observations, now, lag, oldest)
        held = (
            None
            if server is None
            else held_back_by(observations, now, lag, server, state.watermark, is_later)
        )
        notes = () if held is None else (held,)
        if state.watermark is not None and (high is None or not is_later(high, state.watermark)):
            high = state.watermark  # nothing new is old enough yet
        frozen = FrozenWindow(
            cursor,
            state.watermark,
            high,
            lag=lag.total_seconds(),
            numeric=numeric,
            keeps_watermark=keeps,
        )
    nulls = null_cursor_note(source, cursor)
    if nulls is not None:
        notes = (nulls, *notes)
    if not queue.freeze_window(claimed, frozen, observations):
        raise LeaseLost
    return frozen, notes


def _refuse_endless(cursor: str, high: Any, numeric: bool) -> None:
    problem = endless_mark_problem(cursor, high) if numeric else None
    if problem is not None:
        raise RunFailure(problem)


def null_cursor_note(source: Source, cursor: str) -> str | None:
    """The run's warning that records without a cursor value are not taken: a NULL is never
    in (watermark, mark], on the first run as on every later one (README "Run options").
    Counted with the mark (``CursorNullsSource``: every source an incremental run reads), and
    said on every run that leaves such records out."""
    count = source.cursor_nulls() if isinstance(source, CursorNullsSource) else None
    if not count:
        return None
    records = "1 record has" if count == 1 else f"{count} records have"
    return (
        f"{records} no value (NULL) in the cursorField {cursor!r}: incremental runs"
        f" never take them (take them with extractOnlyNew: false and whereClause"
        f' "{cursor} IS NULL", or give them a value)'
    )


def kept_watermark_note(narrowed_by: tuple[str, ...]) -> str:
    """The warning of an incremental run its trigger narrowed (``RunOptions.narrowed_by``)."""
    names = ", ".join(narrowed_by)
    return (
        f"extractOnlyNew with this trigger's own {names}: the run takes only part of the new"
        " records (those that match, or some of their fields), so the watermark does not move"
        " (the next incremental run takes all of them)"
    )


def _comparison(
    source: Source, plan: ReadPlan, field: str, numeric: bool
) -> Callable[[Any, Any], bool]:
    """Whether one mark is later than another: numbers by value, dates and times by their ISO
    text, text in a database's own collation — Python's code-point order held a MySQL
    (case-insensitive by default) or ``en_US`` mark back (``B2`` after ``a1``): its rows were
    never taken, or on PostgreSQL tables taken again on every run."""
    if numeric or plan.column_type(field) != "string" or not isinstance(source, CollatingSource):
        return partial(later, numeric=numeric)

    def in_source(value: Any, current: Any) -> bool:
        if value == current:
            return False
        return source.later_text(plan, field, str(value), str(current))

    return in_source


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


def json_value(value: Any) -> Any:
    """A cursor value as it is stored in JSON and bound back into queries."""
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        # As text: SQLite stores a bare JSON number past int64 (the watermark column) as a
        # REAL, rounded (an unsigned 64-bit cursor then took nothing new, ever).
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)  # Decimal, UUID, …: their text (a number's compares by value: later)
