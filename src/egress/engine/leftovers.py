"""Deleting what an attempt leaves in storage: its temporary files and any key it published
without recording it. Tried at once where the attempt ends; what the store refuses then is
recorded (``db/leftovers``) and the reaper tries it again, with a growing pause, until the
store has deleted it. Failing to clean never changes a run's outcome."""

from __future__ import annotations

import logging

from egress.db.leftovers import LeftoverRepo
from egress.db.run_queue import Leftover, RunQueue
from egress.domain.clock import Clock
from egress.storage import STORAGE_ERRORS, Storage, error_text, tmp_prefix

log = logging.getLogger(__name__)

# Leftovers one reaper round tries at most: the round stays short behind a large backlog.
ROUND_LIMIT = 50


class Cleanup:
    def __init__(
        self, storage: Storage, queue: RunQueue, leftovers: LeftoverRepo, clock: Clock
    ) -> None:
        self._storage = storage
        self._queue = queue
        self._leftovers = leftovers
        self._clock = clock

    def now_or_later(self, leftover: Leftover) -> None:
        """Delete ``leftover`` now; if the store fails, record it for the reaper."""
        try:
            self._discard(leftover)
        except STORAGE_ERRORS as exc:
            log.warning(
                "run %s: could not delete what its attempt left in storage (%s); the reaper "
                "will try again",
                leftover.run_id,
                error_text(exc),
            )
            self._leftovers.leave(leftover)

    def retry_due(self) -> int:
        """Try the recorded leftovers that are due; returns how many were deleted. The round
        ends at the first the store refuses (it is likely down: the rest wait their turn)."""
        deleted = 0
        for stored in self._leftovers.due(self._clock(), ROUND_LIMIT):
            try:
                self._discard(stored.leftover)
            except STORAGE_ERRORS as exc:
                pause = self._leftovers.refused(stored, self._clock())
                log.warning(
                    "reaper: could not delete what run %s's attempt left in storage (%s); "
                    "trying again in %.0f s",
                    stored.leftover.run_id,
                    error_text(exc),
                    pause.total_seconds(),
                )
                break
            self._leftovers.deleted(stored)
            deleted += 1
        return deleted

    def _discard(self, leftover: Leftover) -> None:
        """Its temporary files first (a frozen attempt that wakes up finds nothing to move),
        then the keys it published that no run holds since."""
        self._storage.delete_prefix(
            tmp_prefix(leftover.workspace_id, leftover.run_id, leftover.lease_token)
        )
        self._queue.unpublish(
            leftover.run_id, leftover.lease_token, leftover.publishing_keys, self._storage.delete
        )
