"""Token buckets in the metadata database, so a limit holds across every API replica.

One row per key: the tokens left at ``updated_at``; a read refills them by the time passed.
Taking locks the row (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises
writers), so two replicas never spend the same token.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from egress.db.engine import Repository
from egress.db.tables import rate_buckets
from egress.domain.limits import Bucket


def _level(conn: Connection, key: str, bucket: Bucket, now: datetime, lock: bool) -> float:
    query = sa.select(rate_buckets.c.tokens, rate_buckets.c.updated_at).where(
        rate_buckets.c.key == key
    )
    row = conn.execute(query.with_for_update() if lock else query).one_or_none()
    if row is None:
        return bucket.capacity
    return bucket.refilled(row.tokens, row.updated_at, now)


class RateBucketRepo(Repository):
    def take(self, key: str, bucket: Bucket, now: datetime) -> float:
        """Take one token from ``key``'s bucket: 0 when taken, else the seconds until one is
        there (nothing taken)."""
        for _ in range(3):  # two replicas creating the same bucket: the loser reads it again
            try:
                with self._engine.begin() as conn:
                    level = _level(conn, key, bucket, now, lock=True)
                    if level < 1:
                        return bucket.wait(level)
                    values = {"tokens": level - 1, "updated_at": now}
                    changed = conn.execute(
                        rate_buckets.update().where(rate_buckets.c.key == key).values(**values)
                    ).rowcount
                    if not changed:
                        conn.execute(rate_buckets.insert().values(key=key, **values))
                    return 0.0
            except IntegrityError:
                continue
        return bucket.wait(0.0)

    def prune(self, idle_since: datetime) -> int:
        """Delete the buckets nobody took from since ``idle_since``; how many went."""
        with self._engine.begin() as conn:
            gone = conn.execute(
                rate_buckets.delete().where(rate_buckets.c.updated_at < idle_since)
            ).rowcount
        return int(gone)

    def wait(self, key: str, bucket: Bucket, now: datetime) -> float:
        """Seconds until ``key``'s bucket holds a token again (0: it holds one now)."""
        with self._reads.connect() as conn:
            level = _level(conn, key, bucket, now, lock=False)
        return 0.0 if level >= 1 else bucket.wait(level)
