"""The one way a run's status changes: a guarded transition that appends to the outbox.

Every change is one conditional UPDATE on the expected status (plus the caller's fence, e.g.
the lease token), so two actors can never both win; the domain transition table is checked
first, and the change's ``run_events`` row is written in the same transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from egress.db.changes import ANNOUNCEMENT, announced
from egress.db.hold_statements import (
    ACTIVE_VALUES,
    LOOK,
    OLDEST_RELEASABLE,
    RELEASABLE,
    active_count,
)
from egress.db.run_statements import (
    CANCEL_REQUESTED,
    DROP_PENDING,
    RECORDING_FILES,
    fence_params,
)
from egress.db.tables import UTCDateTime, requests, run_events, run_files, runs
from egress.domain.clock import new_id
from egress.domain.status import (
    RunKind,
    RunStatus,
    check_transition,
    workspace_hold_reason,
)

if TYPE_CHECKING:  # run_records imports executions, which imports this module
    from egress.db.run_records import Outcome

RUNS_CHANNEL = "egress_runs"


def notify(conn: Connection) -> None:
    """Wake listening workers when this transaction commits (PostgreSQL only; SQLite polls)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": RUNS_CHANNEL})


def _with_outbox(update: sa.Update, before: RunStatus, after: RunStatus) -> sa.Select[Any]:
    """``update`` (RETURNING at least id, workspace_id, queued_at) and the INSERT of its changed
    runs' outbox rows, oldest first, as one statement (PostgreSQL's data-modifying CTE); the
    time is the bound parameter ``outbox_at``."""
    changed = update.cte("changed")
    outbox = run_events.insert().from_select(
        ["workspace_id", "run_id", "from_status", "to_status", "at"],
        sa.select(
            changed.c.workspace_id,
            changed.c.id,
            sa.literal(before.value, sa.String()),
            sa.literal(after.value, sa.String()),
            sa.bindparam("outbox_at", type_=UTCDateTime()),
        ).order_by(changed.c.queued_at, changed.c.id),
    )
    return sa.select(changed).add_cte(outbox.cte("outbox"))


def _outbox(
    conn: Connection,
    changed: Sequence[Row[Any]],
    before: RunStatus,
    after: RunStatus,
    now: datetime,
) -> None:
    """The outbox rows of the runs a transition changed, oldest first, in a statement of their
    own (elsewhere than PostgreSQL, where ``_with_outbox`` writes them with the change)."""
    if changed:
        conn.execute(
            run_events.insert(),
            [
                {
                    "workspace_id": row.workspace_id,
                    "run_id": row.id,
                    "from_status": before.value,
                    "to_status": after.value,
                    "at": now,
                }
                for row in sorted(changed, key=lambda r: (r.queued_at, r.id))
            ],
        )


def transition(
    conn: Connection,
    run_id: Any,
    before: RunStatus,
    after: RunStatus,
    now: datetime,
    values: dict[str, Any] | None = None,
    lease_token: str | None = None,
    returning: tuple[sa.ColumnElement[Any], ...] = (),
    params: dict[str, Any] | None = None,
    unless_cancelled: bool = False,
) -> Row[Any] | None:
    """Move run ``run_id`` from ``before`` to ``after``, setting ``values``, if it is still
    ``before`` (and still holds ``lease_token``, when given). ``run_id`` is an id, or a scalar
    subquery choosing one built once by the caller (its bind parameters in ``params``);
    ``unless_cancelled``: nor asked to stop. The changed row (its id, workspace and
    ``returning``), or None when nothing matched."""
    check_transition(before, after)
    values, pg = values or {}, conn.dialect.name == "postgresql"
    chooser = run_id if isinstance(run_id, sa.ScalarSelect) else None
    fenced = lease_token is not None
    statement = _transition_statement(
        chooser, before, after, tuple(values), fenced, unless_cancelled, returning, pg
    )
    # Only the statement's own parameters: an UPDATE takes any other name for a column to set.
    bound = {f"new_{name}": value for name, value in values.items()} | (params or {})
    if chooser is None:
        bound["run_id"] = run_id
    if lease_token is not None:
        bound["lease"] = lease_token
    if pg:
        bound["outbox_at"] = now
    changed = conn.execute(statement, bound).all()
    if not changed:
        return None
    if not pg:
        _outbox(conn, changed, before, after, now)
    announced(conn)
    return changed[0]


@functools.lru_cache(maxsize=64)
def _transition_statement(
    chooser: sa.ScalarSelect[Any] | None,
    before: RunStatus,
    after: RunStatus,
    names: tuple[str, ...],
    fenced: bool,
    unless_cancelled: bool,
    returning: tuple[sa.ColumnElement[Any], ...],
    pg: bool,
) -> sa.Executable:
    """``transition``'s UPDATE for one shape of change, built once with bound parameters:
    building it (and its cache key) anew on every call was most of a claim's and a finish's
    Python (bench/README.md, issue 19). On PostgreSQL with its outbox rows and the read
    caches' NOTIFY in the same statement."""
    target = chooser if chooser is not None else sa.bindparam("run_id", type_=sa.String())
    where = [runs.c.id == target, runs.c.status == before.value]
    if fenced:
        where.append(runs.c.lease_token == sa.bindparam("lease", type_=sa.String()))
    if unless_cancelled:
        where.append(runs.c.cancel_requested.is_(False))
    update = (
        runs.update()
        .where(*where)
        .values(
            {"status": after.value}
            | {name: sa.bindparam(f"new_{name}", type_=runs.c[name].type) for name in names}
        )
        .returning(runs.c.id, runs.c.workspace_id, runs.c.queued_at, *returning)
    )
    if not pg:
        return update
    return _with_outbox(update.returning(ANNOUNCEMENT), before, after)


@dataclass(frozen=True)
class NewRun:
    """A run to queue (``enqueue_runs``)."""

    configuration_id: str
    execution_id: str | None
    run_number: int
    kind: RunKind = RunKind.EXTRACT
    idempotency_key: str | None = None
    owner: str | None = None


@dataclass(frozen=True)
class RequestTicket:
    """The request a client polls for a run (seeds 002 and 003): its id, the user it is for
    and what it is about (an export's object, an extraction's configuration)."""

    id: str
    owner: str
    object: str | None


def insert_request(
    conn: Connection,
    workspace_id: str,
    ticket: RequestTicket,
    kind: RunKind,
    run_id: str,
    now: datetime,
    spec: dict[str, Any] | None = None,
) -> None:
    """The request row of ``run_id``, in the transaction that enqueues the run."""
    conn.execute(
        requests.insert().values(
            id=ticket.id,
            workspace_id=workspace_id,
            kind=kind.value,
            owner=ticket.owner,
            run_id=run_id,
            object=ticket.object,
            spec=spec,
            created_at=now,
        )
    )


def enqueue_run(
    conn: Connection,
    workspace_id: str,
    configuration_id: str,
    execution_id: str | None,
    run_number: int,
    now: datetime,
    kind: RunKind = RunKind.EXTRACT,
    idempotency_key: str | None = None,
    max_per_workspace: int | None = None,
    owner: str | None = None,
) -> str:
    """``enqueue_runs`` of one run; returns its id."""
    new = NewRun(configuration_id, execution_id, run_number, kind, idempotency_key, owner)
    return enqueue_runs(conn, workspace_id, [new], now, max_per_workspace)[0]


def enqueue_runs(
    conn: Connection,
    workspace_id: str,
    new: Sequence[NewRun],
    now: datetime,
    max_per_workspace: int | None = None,
) -> list[str]:
    """Create runs of one workspace, in order: each PENDING, or ON_HOLD behind its
    configuration's active or held runs (an earlier one of ``new`` included), or (with a
    reason saying so) while the workspace has ``max_per_workspace`` runs active; returns their
    ids. A few statements for any number of runs (the scheduler fires a round's slots at
    once). An ``owner``'s second active run breaks a unique index (IntegrityError)."""
    lock_workspace(conn, workspace_id)
    cfg_ids = sorted({n.configuration_id for n in new})
    queued = conn.execute(
        sa.select(runs.c.configuration_id, runs.c.status)
        .where(
            runs.c.configuration_id.in_(cfg_ids),
            runs.c.status.in_([*ACTIVE_VALUES, RunStatus.ON_HOLD.value]),
        )
        .distinct()
    ).all()
    busy = {r.configuration_id for r in queued if r.status != RunStatus.ON_HOLD.value}
    held = {r.configuration_id for r in queued if r.status == RunStatus.ON_HOLD.value}
    # A configuration with held runs and none active: its queue needs healing below.
    stranded = held - busy
    active = _active(conn, workspace_id) if max_per_workspace is not None else 0
    rows: list[dict[str, Any]] = []
    pending = False
    for n in new:
        status, reason = RunStatus.ON_HOLD, None
        if n.configuration_id not in busy and n.configuration_id not in held:
            if max_per_workspace is not None and active >= max_per_workspace:
                reason = workspace_hold_reason(max_per_workspace)
            else:
                status, pending = RunStatus.PENDING, True
                active += 1
            busy.add(n.configuration_id)  # the next of this configuration waits behind it
        rows.append(
            {
                "id": new_id(),
                "workspace_id": workspace_id,
                "execution_id": n.execution_id,
                "configuration_id": n.configuration_id,
                "run_number": n.run_number,
                "kind": n.kind.value,
                "status": status.value,
                "attempt": 1,
                "queued_at": now,
                "cancel_requested": False,
                "idempotency_key": n.idempotency_key,
                "hold_reason": reason,
                "owner": n.owner,
            }
        )
    conn.execute(runs.insert(), rows)
    conn.execute(
        run_events.insert(),
        [
            {
                "workspace_id": workspace_id,
                "run_id": r["id"],
                "from_status": None,
                "to_status": r["status"],
                "at": now,
            }
            for r in rows
        ],
    )
    if stranded:
        release_next(conn, workspace_id, now, max_per_workspace)
    if pending:
        notify(conn)
    return [r["id"] for r in rows]


def cancel_run(
    conn: Connection,
    run_id: str,
    status: RunStatus,
    workspace_id: str,
    now: datetime,
    max_per_workspace: int | None = None,
) -> bool:
    """PENDING/ON_HOLD runs end CANCELLED at once; an IN_PROGRESS run is asked to stop (its
    worker ends it CANCELLED). False when the run changed status meanwhile."""
    if status is RunStatus.IN_PROGRESS:
        # Not a status change: its worker stops and ends it CANCELLED.
        changed = conn.execute(
            runs.update()
            .where(runs.c.id == run_id, runs.c.status == RunStatus.IN_PROGRESS.value)
            .values(cancel_requested=True)
        ).rowcount
        return bool(changed)
    ended = transition(conn, run_id, status, RunStatus.CANCELLED, now, {"completed_at": now})
    if ended is not None and status is RunStatus.PENDING:
        release_next(conn, workspace_id, now, max_per_workspace)
    return ended is not None


_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))")
# ``_LOCK`` with a finished run's pending keys' DELETE (``DROP_PENDING``) and its files' INSERT
# (``RECORDING_FILES``): one round trip.
_LOCK_FINISHING = (
    sa.select(
        sa.func.pg_advisory_xact_lock(sa.func.hashtext(sa.bindparam("key", type_=sa.String())))
    )
    .add_cte(DROP_PENDING.cte("dropped"))
    .add_cte(RECORDING_FILES.cte("recorded"))
)


@dataclass(frozen=True)
class FinishedRun:
    """A run whose outcome the transaction records: its pending keys are dropped and its files
    (``run_files`` rows, keyed by column) recorded with the workspace's lock."""

    run_id: str
    files: list[dict[str, Any]]


def lock_workspace(
    conn: Connection, workspace_id: str, finished: FinishedRun | None = None
) -> None:
    """Serialise the workspace's queue changes, so two replicas never both take its last
    free slot (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises every writer), and
    write what ``finished`` leaves to write (in the same round trip on PostgreSQL)."""
    pg, key = conn.dialect.name == "postgresql", f"egress-runs:{workspace_id}"
    if finished is not None:
        dropped = {"fenced_run": finished.run_id}
        if not pg:
            if finished.files:
                conn.execute(run_files.insert(), finished.files)
            conn.execute(DROP_PENDING, dropped)
            return
        # orjson writes the created_at as ISO 8601 with its offset, which the column reads back
        # to the microsecond.
        files = orjson.dumps(finished.files).decode()
        conn.execute(_LOCK_FINISHING, {**dropped, "key": key, "files": files})
    elif pg:
        conn.execute(_LOCK, {"key": key})


_ACTIVE_RUNS = sa.select(active_count(sa.bindparam("held_workspace")))


def _active(conn: Connection, workspace_id: str) -> int:
    return int(conn.execute(_ACTIVE_RUNS, {"held_workspace": workspace_id}).scalar_one())


def _label_waiting(conn: Connection, workspace_id: str, reason: str) -> None:
    """Held runs that wait for nothing but a free slot say they wait for the workspace's limit
    (rewriting them all on every finish of a full workspace, 950 rows a finish with 1,000
    queued, was most of a drain's time: only those saying something else)."""
    conn.execute(
        runs.update()
        .where(
            runs.c.id.in_(RELEASABLE.order_by(None).params(held_workspace=workspace_id)),
            runs.c.hold_reason.is_distinct_from(reason),
        )
        .values(hold_reason=reason)
    )


# How many held runs a release may take: the oldest releasable one (one slot free, as after
# each finish of a full workspace), the first ``free`` (a bound parameter), or all of them.
Releasing = Literal["one", "some", "all"]


@functools.cache
def _release_outboxed(releasing: Releasing, notifying: bool) -> sa.Select[Any]:
    """PostgreSQL's ``_release`` with its outbox rows (``_with_outbox``), built once."""
    return _with_outbox(_release(releasing, notifying), RunStatus.ON_HOLD, RunStatus.PENDING)


@functools.cache
def _release(releasing: Releasing, notifying: bool) -> sa.Update:
    """The transition ON_HOLD → PENDING of the releasable runs (``releasing`` says how many),
    returning the changed rows; ``notifying`` (PostgreSQL) wakes the workers with it. Built
    once per kind."""
    check_transition(RunStatus.ON_HOLD, RunStatus.PENDING)
    if releasing == "one":  # found without sorting every held run (``OLDEST_RELEASABLE``)
        chosen = runs.c.id == OLDEST_RELEASABLE
    else:
        some = RELEASABLE.limit(sa.bindparam("free")) if releasing == "some" else RELEASABLE
        chosen = runs.c.id.in_(some)
    wake = [sa.func.pg_notify(RUNS_CHANNEL, "").label("notified")] if notifying else []
    return (
        runs.update()
        .where(chosen, runs.c.status == RunStatus.ON_HOLD.value)
        .values(status=RunStatus.PENDING.value, hold_reason=None)
        .returning(runs.c.id, runs.c.workspace_id, runs.c.queued_at, *wake)
    )


def release_next(
    conn: Connection,
    workspace_id: str,
    now: datetime,
    max_per_workspace: int | None = None,
    finished: FinishedRun | None = None,
    *,
    claiming_next: bool = False,
) -> None:
    """A run of the workspace stopped being active: held runs that wait for nothing else
    become PENDING, oldest first, while the workspace has fewer than ``max_per_workspace``
    active; the rest say they wait for the workspace's limit. ``finished``: the run
    whose outcome is recorded, its pending keys and files written with the lock
    (``lock_workspace``). The release wakes the listening workers, unless it made one run
    PENDING for a caller ``claiming_next`` (a worker's slot that claims again as soon as this
    commits): that claim takes a PENDING run at once, and waking every worker (each one's
    LISTEN backend and thread) cost each finish of a full workspace ~0.5 ms of CPU in the
    drain (issue 19); a run another worker could have started meanwhile is found by its poll.

    Every finish of a full workspace queues on its lock, held to the commit, so the work under
    it is a few round trips: the look, one UPDATE releasing every free slot (it wakes the
    workers too), their outbox rows. Only this function and ``enqueue_runs``, both under the
    lock, make a run active, so the releasable runs read after the lock have no active run of
    their configuration (the unique index never refuses one)."""
    lock_workspace(conn, workspace_id, finished)
    params: dict[str, Any] = {"held_workspace": workspace_id}
    free, unlabelled, reason = None, False, ""
    releasing: Releasing = "all"
    if max_per_workspace is not None:
        reason = workspace_hold_reason(max_per_workspace)
        look = conn.execute(LOOK, {**params, "reason": reason}).one()
        free, unlabelled = max(0, max_per_workspace - look.active), bool(look.unlabelled)
        releasing = "one" if free == 1 else "some"
        if releasing == "some":
            params["free"] = free
    released: Sequence[Row[Any]] = []
    if free != 0:
        pg = conn.dialect.name == "postgresql"
        notifying = not (claiming_next and releasing == "one")
        statement = _release_outboxed(releasing, notifying) if pg else _release(releasing, False)
        released = conn.execute(statement, params | ({"outbox_at": now} if pg else {})).all()
        if not pg:
            _outbox(conn, released, RunStatus.ON_HOLD, RunStatus.PENDING, now)
    if unlabelled and len(released) == free:  # every free slot taken: the rest wait for it
        _label_waiting(conn, workspace_id, reason)


def cancel_may_undo(outcome: Outcome) -> bool:
    """Whether a cancel requested before ``outcome`` is recorded undoes it: a success that
    published files (or nothing) is undone (the caller deletes the files), as the API answered
    that cancel 200. A data table's merged rows cannot be: that run stays COMPLETED."""
    if outcome.status not in (RunStatus.COMPLETED, RunStatus.COMPLETED_NO_DATA):
        return False
    return bool(outcome.files) or not outcome.record_count


def cancel_requested(conn: Connection, run_id: str, lease_token: str) -> bool:
    """Whether the run, still under this lease, was asked to stop."""
    requested = conn.execute(
        CANCEL_REQUESTED, fence_params(run_id, lease_token)
    ).scalar_one_or_none()
    return bool(requested)
