"""Fair-use limits that answer 429 + Retry-After: triggers per minute per actor, failed
sign-ins per minute per source address. The buckets are rows of the metadata database, so
every API replica sharing it counts against the same limit.

Every authenticated request asks whether its address may still sign in; reading the bucket for
each would put a query in front of every status poll. So an address whose bucket held a token
is remembered in the ``RevocationCache`` (``EGRESS_REVOCATION_CACHE_S``): a failure this
replica counts forgets it at once, and an address whose failures another replica counted is
refused here at most that long later. An exhausted bucket is never remembered.
"""

from __future__ import annotations

from datetime import timedelta

from egress.db.rate_buckets import RateBucketRepo
from egress.domain.clock import Clock
from egress.domain.errors import Busy
from egress.domain.identity import Principal
from egress.domain.limits import FULL_AFTER_S, Bucket, retry_after
from egress.services.revocation import RevocationCache

# How often the worker deletes full buckets (``prune_full``).
PRUNE_EVERY_S = 300.0


class RateLimits:
    def __init__(
        self,
        buckets: RateBucketRepo,
        clock: Clock,
        triggers_per_minute: int,
        failed_sign_ins_per_minute: int,
        memory: RevocationCache,
    ) -> None:
        self._buckets = buckets
        self._memory = memory
        self._clock = clock
        self._triggers = Bucket(triggers_per_minute)
        self._sign_ins = Bucket(failed_sign_ins_per_minute)

    def trigger(self, by: Principal) -> None:
        """Spend one of the actor's triggers (the user behind a personal token, so that one
        user's tokens share one limit); Busy (429) when there is none left."""
        actor = by.actor
        key = f"trigger:{by.workspace_id}:{actor.type}:{actor.id}"
        wait = self._buckets.take(key, self._triggers, self._clock())
        if wait:
            raise Busy(
                f"too many triggers: at most {self._triggers.per_minute} a minute per user "
                "(EGRESS_TRIGGERS_PER_MINUTE); try again later",
                retry_after(wait),
            )

    def _sign_in_key(self, source_address: str | None) -> str:
        return f"sign-in-failures:{source_address or 'unknown'}"

    def _refuse_sign_in(self, wait: float) -> Busy:
        return Busy(
            f"too many failed sign-ins from this address: at most {self._sign_ins.per_minute} "
            "a minute (EGRESS_FAILED_SIGNINS_PER_MINUTE); try again later",
            retry_after(wait),
        )

    def before_sign_in(self, source_address: str | None) -> None:
        """Busy (429) while the address has used up its failed sign-ins."""
        key = self._sign_in_key(source_address)
        wait = 0.0

        def load() -> bool | None:
            nonlocal wait
            wait = self._buckets.wait(key, self._sign_ins, self._clock())
            return None if wait else True  # None: not remembered

        if self._memory.get(key, load) is None:
            raise self._refuse_sign_in(wait)

    def prune_full(self) -> int:
        """Delete the buckets that have refilled (each address or actor seen leaves one row
        otherwise); a later request simply starts a new full one. How many went."""
        return self._buckets.prune(self._clock() - timedelta(seconds=FULL_AFTER_S))

    def failed_sign_in(self, source_address: str | None) -> None:
        """Count a failed sign-in; Busy (429) when it was one too many."""
        key = self._sign_in_key(source_address)
        wait = self._buckets.take(key, self._sign_ins, self._clock())
        self._memory.forget(key)  # after the take: a read racing it cannot remember the old level
        if wait:
            raise self._refuse_sign_in(wait)
