"""Worker: claim a PENDING run, carry it out under a lease, heartbeat, reap the dead."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta
from typing import Protocol

from egress.db.executions import ClaimedRun, ExecutionRepo, ReapCounts
from egress.domain.clock import Clock
from egress.engine.control import LeaseLost, RunControl, RunReleased
from egress.engine.runner import Runner
from egress.worker.wakeup import Wakeup

log = logging.getLogger(__name__)


class Listener(Protocol):
    """Something that calls ``wakeup.notify()`` when runs are queued elsewhere."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Worker:
    def __init__(
        self,
        executions: ExecutionRepo,
        runner: Runner,
        clock: Clock,
        *,
        concurrency: int,
        lease_s: float,
        heartbeat_s: float,
        poll_s: float,
        max_attempts: int,
        wakeup: Wakeup | None = None,
        listener: Listener | None = None,
        name: str = "worker",
    ) -> None:
        self._executions = executions
        self._runner = runner
        self._clock = clock
        self._concurrency = concurrency
        self._lease = timedelta(seconds=lease_s)
        self._heartbeat_s = heartbeat_s
        self._poll_s = poll_s
        self._max_attempts = max_attempts
        self.wakeup = wakeup or Wakeup()
        self._name = name
        self._listener = listener
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._active: dict[str, RunControl] = {}
        self._lock = threading.Lock()

    def process_id(self, slot: int) -> str:
        return f"{socket.gethostname()}:{os.getpid()}:{self._name}-{slot}"

    # ------------------------------------------------------------ one step each
    def run_once(self, slot: int = 0) -> bool:
        """Claim and carry out one run; False when the queue was empty."""
        claimed = self._executions.claim(self.process_id(slot), self._lease, self._clock())
        if claimed is None:
            return False
        control = RunControl()
        with self._lock:
            self._active[claimed.run_id] = control
        done = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(claimed, control, done), daemon=True, name="heartbeat"
        )
        beat.start()
        try:
            self._runner.execute(claimed, control)
        except RunReleased:
            self._executions.release(claimed)
            log.info("run %s released for another worker", claimed.run_id)
        except LeaseLost:
            log.warning("run %s: lease lost; committed nothing", claimed.run_id)
        finally:
            done.set()
            beat.join()
            with self._lock:
                self._active.pop(claimed.run_id, None)
        return True

    def reap_once(self) -> ReapCounts:
        counts = self._executions.reap(self._clock(), self._max_attempts)
        for leftover in counts.leftovers:
            self._runner.discard(leftover)
        if counts.requeued or counts.failed:
            log.warning("reaper: %s runs requeued, %s failed", counts.requeued, counts.failed)
            self.wakeup.notify()
        return counts

    def _heartbeat(self, claimed: ClaimedRun, control: RunControl, done: threading.Event) -> None:
        while not done.wait(self._heartbeat_s):
            try:
                beat = self._executions.heartbeat(
                    claimed.run_id,
                    claimed.lease_token,
                    control.processed,
                    self._lease,
                    self._clock(),
                )
            except Exception:
                log.exception("heartbeat of run %s failed; will retry", claimed.run_id)
                continue
            if not beat.alive:
                control.lease_lost()
                return
            if beat.cancel_requested:
                control.request_cancel()

    # --------------------------------------------------------------- the loops
    def start(self) -> None:
        if self._listener is not None:
            self._listener.start()
        for slot in range(self._concurrency):
            t = threading.Thread(target=self._slot_loop, args=(slot,), name=f"worker-{slot}")
            t.start()
            self._threads.append(t)
        reaper = threading.Thread(target=self._reaper_loop, name="reaper", daemon=True)
        reaper.start()

    def _slot_loop(self, slot: int) -> None:
        while not self._stopping.is_set():
            try:
                worked = self.run_once(slot)
            except Exception:
                log.exception("worker slot %s: unexpected error", slot)
                worked = False
            if not worked:
                self.wakeup.wait(self._poll_s)

    def _reaper_loop(self) -> None:
        interval = max(0.5, min(self._lease.total_seconds() / 3, 5.0))
        while not self._stopping.wait(interval):
            try:
                self.reap_once()
            except Exception:
                log.exception("reaper: unexpected error")

    def stop(self, grace_s: float) -> None:
        """Stop claiming; let running runs finish for ``grace_s``, then give them back."""
        self._stopping.set()
        for _ in self._threads:
            self.wakeup.notify()
        deadline = self._clock() + timedelta(seconds=grace_s)
        for t in self._threads:
            t.join(max(0.0, (deadline - self._clock()).total_seconds()))
        with self._lock:
            for control in self._active.values():
                control.request_release()
        for t in self._threads:
            t.join()
        if self._listener is not None:
            self._listener.stop()
