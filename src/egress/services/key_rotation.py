"""``egress admin rotate-key``: re-seal every stored connection secret under the first key of
``EGRESS_SECRET_KEYS``, without downtime.

Put the new key first and keep the old ones in the ring of every process (they still open what
the old keys sealed), run the rotation once, then remove the old keys. Each connection is
re-sealed in its own small transaction with a compare-and-set, so runs, `/test` and edits go on
meanwhile; a second run finds nothing left to do (idempotent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cryptography.fernet import InvalidToken

from egress.crypto import SecretBox
from egress.db.connections import ConnectionRepo

log = logging.getLogger(__name__)
# Connections read per page: memory stays flat however many there are.
PAGE = 500


@dataclass(frozen=True)
class RotationCounts:
    resealed: int  # now sealed under the first key
    current: int  # were already
    unreadable: int  # no key of the ring opens them: left as they are (logged by id)
    changed_meanwhile: int  # edited during the rotation: sealed under the first key by that edit


class KeyRotation:
    def __init__(self, connections: ConnectionRepo, secret_box: SecretBox) -> None:
        self._connections = connections
        self._box = secret_box

    def rotate(self) -> RotationCounts:
        resealed = current = unreadable = changed = 0
        after = ""
        while page := self._connections.sealed_after(after, PAGE):
            for connection_id, sealed in page:
                after = connection_id
                if self._box.is_current(sealed):
                    current += 1
                    continue
                try:
                    fresh = self._box.reseal(sealed)
                except InvalidToken:
                    log.error("connection %s: no key of the ring opens its secrets", connection_id)
                    unreadable += 1
                    continue
                if self._connections.reseal(connection_id, sealed, fresh):
                    resealed += 1
                else:
                    changed += 1
        return RotationCounts(resealed, current, unreadable, changed)
