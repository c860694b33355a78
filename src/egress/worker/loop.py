"""Worker: claim a PENDING run, carry it out under a lease, heartbeat, reap the dead."""

from __future__ import annotations

import logging
import os
import queue
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from egress.db.run_queue import ClaimedRun, Outcome, ReapCounts, RunQueue
from egress.domain.clock import Clock
from egress.domain.retry import Backoff
from egress.domain.status import RunStatus
from egress.engine.control import (
    LeaseLost,
    RunCancelled,
    RunControl,
    RunReleased,
    RunStalled,
    stall_reason,
)
from egress.engine.faults import TransientFailure
from egress.engine.runner import Runner
from egress.worker.periodic import Periodic, log_round_error
from egress.worker.wakeup import Wakeup

log = logging.getLogger(__name__)

# After a stop signal interrupted its source, how long a run's own thread gets to come back
# from the driver call before the watchdog records the outcome in its place: a driver that
# ignores the interrupt keeps its thread, never the run (cancel sticks within 2 s).
TAKEOVER_S = 1.0
# How long stop() waits past the grace for interrupted runs to be given back; longer than a
# takeover. A thread still busy then is left behind (the reaper recovers its run).
RELEASE_WAIT_S = TAKEOVER_S + 1.0
_STOPPED_TICK_S = 0.1
# A watchdog thread left idle this long ends (``Watchers``); a drain's runs come back to back.
WATCHER_IDLE_S = 10.0


class Listener(Protocol):
    """Something that calls ``wakeup.notify()`` when runs are queued elsewhere."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


# A watch's arguments, and the event set when it returned.
_Watch = tuple[tuple[Any, ...], threading.Event]


class Watchers:
    """The threads that watch runs (``Worker._watch``), each kept for a next run once its run
    ended: a thread started and joined for every run cost ~0.3 ms of CPU on a 2-core VM, where
    a tiny run may spend ~13 ms in all for the drain to reach 150 runs/s (bench/README.md,
    issue 19). There are never more of them than runs watched at once (a slot waits for its
    run's watch to end), and one idle for ``idle_s`` ends: a stopped or idle worker keeps none.
    Daemon threads, like the slots: a watch that never ends (its run's thread stuck past
    stop()) does not keep the process alive."""

    def __init__(self, watch: Callable[..., None], idle_s: float = WATCHER_IDLE_S) -> None:
        self._watch = watch
        self._idle_s = idle_s
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[_Watch]] = []

    def watch(self, *args: Any) -> threading.Event:
        """``watch(*args)`` on a thread of its own; the event is set when it returned."""
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            thread = threading.Thread(
                target=self._serve, args=(inbox,), daemon=True, name="watchdog"
            )
            thread.start()
        ended = threading.Event()
        inbox.put((args, ended))
        return ended

    def _serve(self, inbox: queue.SimpleQueue[_Watch]) -> None:
        while True:
            try:
                args, ended = inbox.get(timeout=self._idle_s)
            except queue.Empty:
                with self._lock:
                    if any(idle is inbox for idle in self._idle):
                        self._idle.remove(inbox)
                        return
                continue  # taken off the idle list just now: its watch is on the way
            try:
                self._watch(*args)
            except Exception:  # the run goes on unwatched, as it would have on a thread of its own
                log.exception("the watchdog of run %s failed", getattr(args[0], "run_id", "?"))
            finally:
                with self._lock:  # idle before the run's slot hears it ended: a slot's next
                    self._idle.append(inbox)  # run finds this thread
                ended.set()


class Worker:
    def __init__(
        self,
        queue: RunQueue,
        runner: Runner,
        clock: Clock,
        *,
        concurrency: int,
        lease_s: float,
        heartbeat_s: float,
        poll_s: float,
        max_attempts: int,
        stall_s: float,
        backoff: Backoff,
        wakeup: Wakeup | None = None,
        listener: Listener | None = None,
        name: str = "worker",
        random_source: Callable[[], float] = random.random,
        loops: list[Periodic[Any]] | None = None,
    ) -> None:
        self._queue = queue
        self._runner = runner
        self._clock = clock
        self._concurrency = concurrency
        self._lease = timedelta(seconds=lease_s)
        self._heartbeat_s = heartbeat_s
        self._poll_s = poll_s
        self._max_attempts = max_attempts
        self._stall_s = stall_s
        self._backoff = backoff
        self._random = random_source
        self.wakeup = wakeup or Wakeup()
        self.wakeup.keep_at_most(concurrency)
        self._name = name
        self._listener = listener
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._releasing = False
        self._threads: list[threading.Thread] = []
        self._active: dict[str, RunControl] = {}
        self._lock = threading.Lock()
        self._watchers = Watchers(self._watch)
        # Often enough that a dead worker's run is back within a third of a lease.
        reap_every = max(0.5, min(self._lease.total_seconds() / 3, 5.0))
        self.reaper = Periodic("reaper", reap_every, self.reap_once)
        # Other background loops run beside the reaper (e.g. the export files' retention).
        self.loops = [self.reaper, *(loops or [])]

    def process_id(self, slot: int) -> str:
        return f"{socket.gethostname()}:{os.getpid()}:{self._name}-{slot}"

    # ------------------------------------------------------------ one step each
    def run_once(self, slot: int = 0) -> bool:
        """Claim and carry out one run; False when the queue was empty."""
        with self._queue.kept_connection():  # from the claim to the outcome
            return self._run_one(slot)

    def _run_one(self, slot: int) -> bool:
        claimed = self._queue.claim(self.process_id(slot), self._lease, self._clock())
        if claimed is None:
            return False
        control = RunControl()
        with self._lock:
            self._active[claimed.run_id] = control
            if self._releasing:  # claimed while stop() was giving runs back
                control.request_release()
        done = threading.Event()
        watched = self._watchers.watch(claimed, control, done)
        try:
            self._runner.execute(claimed, control)
        except RunReleased:
            ended = self._queue.release(claimed, self._clock())
            log.info("run %s given back at shutdown: %s", claimed.run_id, ended)
        except (RunStalled, TransientFailure) as failure:
            ended = self._retry_later(claimed, str(failure))
            log.warning("run %s: %s; now %s", claimed.run_id, failure, ended)
        except LeaseLost:
            log.warning("run %s: lease lost; committed nothing", claimed.run_id)
        finally:
            done.set()
            watched.wait()
            with self._lock:
                self._active.pop(claimed.run_id, None)
        return True

    def reap_once(self) -> ReapCounts:
        counts = self._queue.reap(self._clock(), self._max_attempts)
        # What these and earlier attempts left in storage (kept while the store failed).
        self._runner.cleanup.retry_due()
        if counts.requeued or counts.failed or counts.cancelled:
            log.warning(
                "reaper: %s runs requeued, %s failed, %s cancelled",
                counts.requeued,
                counts.failed,
                counts.cancelled,
            )
            self.wakeup.notify()
        return counts

    def _watch(self, claimed: ClaimedRun, control: RunControl, done: threading.Event) -> None:
        """The run's watchdog: heartbeats (lease, progress, cancel requests), the stall limit,
        and the takeover of a run whose thread does not come back from an interrupted call."""
        next_beat = time.monotonic() + self._heartbeat_s
        while True:
            wake = next_beat
            if control.stopped_at is not None:  # look often until the run's thread is back
                soon = time.monotonic() + _STOPPED_TICK_S
                wake = min(wake, max(control.stopped_at + TAKEOVER_S, soon))
            if done.wait(max(0.0, wake - time.monotonic())):
                return
            now = time.monotonic()
            if (
                control.stopped_at is not None
                and now >= control.stopped_at + TAKEOVER_S
                and control.in_source_call
            ):
                self._take_over(claimed, control)
                return
            if now < next_beat:
                continue
            next_beat = now + self._heartbeat_s
            if not self._beat(claimed, control):
                return
            if control.stalled(self._stall_s):
                control.stall(stall_reason(self._stall_s))

    def _beat(self, claimed: ClaimedRun, control: RunControl) -> bool:
        """One heartbeat; False when the lease is gone (nothing more to watch)."""
        try:
            beat = self._queue.heartbeat(
                claimed.run_id,
                claimed.lease_token,
                control.processed,
                self._lease,
                self._clock(),
                control.estimated_rows,
            )
        except Exception as exc:  # the next beat retries
            log_round_error(f"heartbeat of run {claimed.run_id}", exc)
            return True
        if not beat.alive:
            control.lease_lost()
            return False
        if beat.cancel_requested:
            control.request_cancel()
        return True

    def _take_over(self, claimed: ClaimedRun, control: RunControl) -> None:
        """Record, fenced by the lease, what the stuck run would have recorded itself; if its
        thread ever comes back, its own outcome finds the lease gone and commits nothing."""
        reason = control.reason()
        now = self._clock()
        ended: RunStatus | None = None
        if isinstance(reason, RunCancelled):
            outcome = Outcome.stopped(RunStatus.CANCELLED, control.processed)
            outcome = replace(outcome, estimated_rows=control.estimated_rows)
            # The run's slot is still in its driver call: nothing claims after this.
            ended = self._queue.finish(claimed, outcome, now, claiming_next=False)
        elif isinstance(reason, RunStalled):
            ended = self._retry_later(claimed, str(reason), now)
        elif isinstance(reason, RunReleased):
            ended = self._queue.release(claimed, now)
        log.warning(
            "run %s: the source call did not return %.0f s after it was interrupted (%s); "
            "recorded %s in its place",
            claimed.run_id,
            TAKEOVER_S,
            type(reason).__name__,
            ended,
        )

    def _retry_later(
        self, claimed: ClaimedRun, reason: str, now: datetime | None = None
    ) -> RunStatus | None:
        """The attempt failed for a transient reason: the run waits out its backoff in the
        queue (FAILED after the last attempt)."""
        now = now or self._clock()
        not_before = now + self._backoff.delay(claimed.attempt, self._random)
        return self._queue.fail_attempt(claimed, now, self._max_attempts, reason, not_before)

    # --------------------------------------------------------------- the loops
    def start(self) -> None:
        if self._listener is not None:
            self._listener.start()
        for slot in range(self._concurrency):
            # Daemon: a slot stuck in a driver call that ignores interrupts must not keep the
            # process alive after stop() gave its run back.
            t = threading.Thread(
                target=self._slot_loop, args=(slot,), name=f"worker-{slot}", daemon=True
            )
            t.start()
            self._threads.append(t)
        for loop in self.loops:
            loop.start()

    def _slot_loop(self, slot: int) -> None:
        while not self._stopping.is_set():
            # The slot keeps its metadata connection while runs come back to back (issue 19's
            # drain), and waits for work without it.
            with self._queue.kept_connection():
                worked = self._round(slot)
                while worked and not self._stopping.is_set():
                    worked = self._round(slot)
            if not worked:
                self.wakeup.wait(self._poll_s)

    def _round(self, slot: int) -> bool:
        """``run_once``; False when it failed (logged)."""
        try:
            return self.run_once(slot)
        except Exception as exc:
            log_round_error(f"worker slot {slot}", exc)
            return False

    def stop(self, grace_s: float) -> None:
        """Stop claiming; let running runs finish for ``grace_s``, then interrupt them and give
        them back. Returns within about ``grace_s + RELEASE_WAIT_S``; a second call (from
        another thread) waits for the first."""
        with self._lock:
            first = not self._stopping.is_set()
            self._stopping.set()
        if not first:
            self._stopped.wait()
            return
        for loop in self.loops:
            loop.stop()
        for _ in self._threads:
            self.wakeup.notify()
        deadline = time.monotonic() + grace_s
        self._join(deadline)
        with self._lock:
            self._releasing = True
            for control in self._active.values():
                control.request_release()
        self._join(deadline + RELEASE_WAIT_S)
        with self._lock:
            left = list(self._active)
        if left:
            log.warning("stopping with runs still in driver calls: %s", ", ".join(left))
        if self._listener is not None:
            self._listener.stop()
        self._runner.close()
        self._stopped.set()

    def _join(self, deadline: float) -> None:
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
