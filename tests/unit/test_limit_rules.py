"""Token-bucket arithmetic of the fair-use limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from egress.domain.limits import Bucket, retry_after

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def test_a_bucket_refills_continuously_up_to_its_burst() -> None:
    b = Bucket(per_minute=6)  # one token every 10 s, at most 6
    assert b.refilled(0.0, T0, T0 + timedelta(seconds=5)) == 0.5
    assert b.refilled(0.0, T0, T0 + timedelta(hours=1)) == 6.0
    assert b.refilled(2.0, T0, T0 - timedelta(seconds=5)) == 2.0  # a clock step back adds none
    assert b.wait(0.5) == 5.0
    assert retry_after(b.wait(0.5)) == 5
    assert retry_after(0.01) == 1 and retry_after(4.2) == 5
