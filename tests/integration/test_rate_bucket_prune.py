"""The fair-use limits' buckets do not pile up: the worker's ``rate-bucket-prune`` loop deletes
the ones that have refilled, and a pruned bucket counts as the full one it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from egress.container import Container
from egress.db.tables import rate_buckets
from egress.domain.errors import Busy
from egress.domain.identity import Principal, Subject

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _keys(c: Container) -> set[str]:
    with c.engine.connect() as conn:
        return set(conn.execute(sa.select(rate_buckets.c.key)).scalars())


def test_the_worker_prunes_idle_full_buckets_only(container: Container) -> None:
    c = container
    c.settings.failed_signins_per_minute = 1
    now = [T0]
    c.clock = lambda: now[0]
    limits = c._limits()
    ws = c.services.identity.create_workspace("prune")
    limits.trigger(Principal(ws, "editor", Subject("token", "t1", "ci")))
    now[0] = T0 + timedelta(seconds=30)
    limits.failed_sign_in("10.0.0.1")
    with pytest.raises(Busy):  # the address's second failure in the minute: its bucket is empty
        limits.failed_sign_in("10.0.0.1")
    prune = next(loop for loop in c.worker().loops if loop.name == "rate-bucket-prune")

    now[0] = T0 + timedelta(seconds=59)
    assert prune.tick() == 0  # nothing has refilled yet
    now[0] = T0 + timedelta(seconds=61)
    assert prune.tick() == 1  # the trigger bucket, untouched for a minute
    assert _keys(c) == {"sign-in-failures:10.0.0.1"}
    with pytest.raises(Busy):  # the emptied bucket is kept: the address is still refused
        limits.before_sign_in("10.0.0.1")
    now[0] = T0 + timedelta(seconds=30 + 61)
    assert prune.tick() == 1
    assert _keys(c) == set()
    limits.before_sign_in("10.0.0.1")  # a pruned bucket is a full one
    limits.failed_sign_in("10.0.0.1")
