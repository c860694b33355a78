"""The snapshot an incremental run reads in: its queries and the parsing of
``pg_current_snapshot()`` text."""

from __future__ import annotations

from typing import Any

import psycopg

from egress.sources.base import SnapshotMark

# Before an incremental run's transaction: may its relation's rows be read by visibility (a
# table has xmin; a view or a foreign table has not), and was anything in progress (a session
# of this database inside a transaction — even one holding no transaction id yet — or one
# hidden from this user)? A standby shows neither the primary's sessions nor their locks.
IDLE_SQL = """NOT EXISTS (
         SELECT 1 FROM pg_stat_activity a
         WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
           AND a.backend_type <> 'autovacuum worker'
           AND (a.xact_start IS NOT NULL OR a.state IS NULL)
       )"""
SNAPSHOT_PRE_SQL = f"""
SELECT (SELECT c.relkind IN ('r', 'p', 'm') FROM pg_class c WHERE c.oid = to_regclass({{rel}})),
       pg_is_in_recovery(), pg_current_snapshot()::text, {IDLE_SQL}
"""
# The first statement of the run's REPEATABLE READ transaction: its snapshot, the mark and
# the records without a cursor value (``marks.mark_statement``: columns high, nulls), and
# which ids between the snapshot's xmin and xmax are still in progress. pg_snapshot lists
# top-level transactions only; a row written under a savepoint carries its subtransaction's
# id, which pg_xact_status reports in progress while its top-level transaction runs. (One
# status lookup per id started since the oldest transaction in progress.)
SNAPSHOT_SQL = f"""
SELECT pg_current_snapshot()::text, m.high, m.nulls,
       (SELECT string_agg(x::text, ',')
        FROM generate_series(pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
                             pg_snapshot_xmax(pg_current_snapshot())::text::bigint - 1) AS x
        WHERE pg_xact_status(x::text::xid8) = 'in progress'),
       {IDLE_SQL}
FROM ({{mark}}) AS m
"""
BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
# A transaction in progress in the snapshot that ended before the statuses were read leaves
# its subtransactions unknown: take a new snapshot (each try races a different transaction).
SNAPSHOT_TRIES = 5


# A parallel read's sessions read a key range each: those N sessions are the run's
# parallelism, and PostgreSQL's own workers on top of them (a Gather per range, the leader
# waiting to pass their rows on) only contended with the other ranges for the cores: on 2
# cores, parallelism 2 of Egress's CSV took 0.94-0.99x the single COPY's time with them and
# 0.69x without (bench/README.md, 2026-12-03). The single stream keeps them.
NO_GATHER = "SET LOCAL max_parallel_workers_per_gather = 0"


def join_snapshot(conn: Any, exported: str) -> None:
    """A parallel read's later session in the first one's exported snapshot (``exported``:
    quoted), without workers of its own."""
    one_row(conn, BEGIN_SNAPSHOT)
    one_row(conn, f"SET TRANSACTION SNAPSHOT {exported}")
    one_row(conn, NO_GATHER)


def one_row(conn: Any, sql: str) -> Any:
    """One row of a statement on a psycopg or an ADBC connection (both DB-API cursors)."""
    if isinstance(conn, psycopg.Connection):
        cursor = conn.execute(sql)
        return cursor.fetchone() if cursor.description else None
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone() if cur.description else None


def take_mark(conn: Any, pre: str, sql: str) -> SnapshotMark | None:
    """Begin the run's snapshot transaction on ``conn`` (psycopg or ADBC) and read its mark
    (``pre``: SNAPSHOT_PRE_SQL, ``sql``: SNAPSHOT_SQL, of the plan's relation); None, with no
    transaction begun, when the relation has no row versions to see."""
    for attempt in range(SNAPSHOT_TRIES):
        has_xmin, standby, before, idle = one_row(conn, pre)
        if not has_xmin:
            return None
        one_row(conn, BEGIN_SNAPSHOT)
        snapshot, high, nulls, running, still_idle = one_row(conn, sql)
        # A standby's snapshot lists subtransactions among the ids in progress itself.
        complete = snapshot if standby else with_subtransactions(snapshot, running or "")
        # Quiet: no session of this database was inside a transaction just before or just
        # after the snapshot, none is in progress in it, and no transaction ended in between
        # (xmax, the next id, did not move).
        quiet = bool(
            idle
            and still_idle
            and not standby
            and xip_of(before) == xip_of(snapshot) == []
            and xmax_of(before) == xmax_of(snapshot)
        )
        # Try again when the snapshot lost a transaction's subtransactions, or missed being
        # quiet only because something (in any database) committed meanwhile.
        again = complete is None or (idle and still_idle and not quiet)
        if not again or attempt == SNAPSHOT_TRIES - 1:
            break
        one_row(conn, "ROLLBACK")
    return SnapshotMark(high=high, snapshot=complete or snapshot, quiet=quiet, nulls=nulls)


def xmax_of(snapshot: str) -> int:
    return int(snapshot.split(":")[1])


def xip_of(snapshot: str) -> list[int]:
    listed = snapshot.split(":")[2]
    return [int(x) for x in listed.split(",")] if listed else []


def with_subtransactions(snapshot: str, running: str) -> str | None:
    """The snapshot with the subtransaction ids of its transactions in progress (``running``:
    the ids below its xmax in progress when read, after it) added to the list of ids in
    progress, so pg_visible_in_snapshot answers for rows written under savepoints; None when
    a transaction of the list ended before ``running`` was read."""
    xmin, xmax = int(snapshot.split(":")[0]), xmax_of(snapshot)
    in_progress = set(xip_of(snapshot))
    still = {int(x) for x in running.split(",") if x}
    if not in_progress <= still:
        return None
    listed = sorted(in_progress | still)
    return f"{xmin}:{xmax}:{','.join(map(str, listed))}"
