"""LISTEN/NOTIFY wake-ups for workers sharing a PostgreSQL metadata database.

The repositories send ``NOTIFY egress_runs`` in the same transaction that makes a run PENDING,
so the notification arrives exactly when the run becomes claimable. Polling stays as the
fallback: a lost connection or a missed notification only costs one poll interval.
"""

from __future__ import annotations

import threading

from egress.db.changes import LISTEN_TIMEOUT_S, libpq_url, listen
from egress.db.transitions import RUNS_CHANNEL
from egress.worker.wakeup import Wakeup


class PgListener:
    def __init__(self, sqlalchemy_url: str, wakeup: Wakeup) -> None:
        self._url = libpq_url(sqlalchemy_url)
        self._wakeup = wakeup
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(LISTEN_TIMEOUT_S * 3)

    def _run(self) -> None:
        # On connecting too: runs queued while nobody listened.
        listen(self._url, RUNS_CHANNEL, self._stopping, lambda _connected: self._wakeup.notify())
