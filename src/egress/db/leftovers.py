"""What attempts left in storage (``storage_leftovers``): recorded when an attempt ends without
deleting it (the reaper ended it, or the store failed its cleanup), deleted by the reaper,
which tries again with a growing pause while the store fails. A row goes only once the objects
are gone: a store down at the wrong moment no longer leaves files in a bucket for good."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from egress.db.engine import Repository
from egress.db.run_records import Leftover
from egress.db.tables import storage_leftovers
from egress.domain.clock import new_id

# The pause before the next try of a leftover the store refused: doubling from the first,
# never longer than the last.
FIRST_PAUSE = timedelta(seconds=5)
LONGEST_PAUSE = timedelta(hours=1)


@dataclass(frozen=True)
class StoredLeftover:
    id: str
    tries: int
    leftover: Leftover


def pause_after(tries: int) -> timedelta:
    """How long a leftover the store refused ``tries`` times waits for its next try."""
    return min(FIRST_PAUSE * (1 << min(tries - 1, 20)), LONGEST_PAUSE)


def record(conn: Connection, leftover: Leftover, now: datetime) -> None:
    """Record ``leftover`` in the caller's transaction, due at once."""
    conn.execute(
        storage_leftovers.insert().values(
            id=new_id(),
            run_id=leftover.run_id,
            workspace_id=leftover.workspace_id,
            lease_token=leftover.lease_token,
            storage_keys=leftover.publishing_keys,
            tries=0,
            next_try_at=now,
        )
    )


class LeftoverRepo(Repository):
    def leave(self, leftover: Leftover) -> None:
        with self._engine.begin() as conn:
            record(conn, leftover, self._clock())

    def due(self, now: datetime, limit: int) -> list[StoredLeftover]:
        """The leftovers whose next try is due, the longest waiting first."""
        t = storage_leftovers.c
        with self._reads.connect() as conn:
            rows = conn.execute(
                sa.select(t.id, t.tries, t.run_id, t.workspace_id, t.lease_token, t.storage_keys)
                .where(t.next_try_at <= now)
                .order_by(t.next_try_at)
                .limit(limit)
            ).all()
        return [
            StoredLeftover(
                r.id, r.tries, Leftover(r.run_id, r.workspace_id, r.lease_token, r.storage_keys)
            )
            for r in rows
        ]

    def deleted(self, stored: StoredLeftover) -> None:
        """Its objects are gone: forget it."""
        with self._engine.begin() as conn:
            conn.execute(storage_leftovers.delete().where(storage_leftovers.c.id == stored.id))

    def refused(self, stored: StoredLeftover, now: datetime) -> timedelta:
        """The store refused it once more: the pause until its next try."""
        tries = stored.tries + 1
        pause = pause_after(tries)
        with self._engine.begin() as conn:
            conn.execute(
                storage_leftovers.update()
                .where(storage_leftovers.c.id == stored.id)
                .values(tries=tries, next_try_at=now + pause)
            )
        return pause
