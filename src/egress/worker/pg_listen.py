"""LISTEN/NOTIFY wake-ups for workers sharing a PostgreSQL metadata database.

The repositories send ``NOTIFY egress_runs`` in the same transaction that makes a run PENDING,
so the notification arrives exactly when the run becomes claimable. Polling stays as the
fallback: a lost connection or a missed notification only costs one poll interval.
"""

from __future__ import annotations

import logging
import threading

import psycopg
from sqlalchemy.engine import make_url

from egress.db.transitions import RUNS_CHANNEL
from egress.worker.wakeup import Wakeup

log = logging.getLogger(__name__)
# How long the listener blocks before checking whether it should stop.
LISTEN_TIMEOUT_S = 1.0
RECONNECT_DELAY_S = 2.0


def libpq_url(sqlalchemy_url: str) -> str:
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


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
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {RUNS_CHANNEL}")
                    self._wakeup.notify()  # runs queued while we were not listening
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=LISTEN_TIMEOUT_S, stop_after=1):
                            self._wakeup.notify()
            except psycopg.Error as exc:
                log.warning("LISTEN connection lost (%s); polling until it is back", exc)
                self._stopping.wait(RECONNECT_DELAY_S)
