"""The worker and scheduler of ``egress serve`` in a child process (EGRESS_EMBEDDED_WORKER
``process``, the default): an extraction then never holds the API's GIL.

The child is forked after the imports and the migration and before the API starts any thread,
event loop or connection, so it costs no second start-up, and every fork happens in a process
without threads: the API forks a small *supervisor*, which forks the *worker process* (the same
``Worker`` and scheduler loop as ``egress worker`` and ``egress scheduler``) and forks it again
when it dies of anything but a stop, logging why.

Runs queued by the API wake the worker process through a pipe (``PipeWakeup``). When the API
process ends, however it ends, that pipe closes: the worker process gives its runs back at once
and exits, and the supervisor, seeing its parent gone, exits with it. ``Background.terminate``
(at SIGTERM) is the orderly stop: the worker process finishes or gives back its runs within
EGRESS_SHUTDOWN_GRACE_S.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from egress.cli.stop_signals import stop_on_signals
from egress.container import Container
from egress.worker.wakeup import PipeWakeup, relay

log = logging.getLogger(__name__)

# A worker process that keeps dying is started again after 1, 2, 4 … seconds, at most this
# many; one that lived this long before dying is restarted at once.
RESTART_MAX_DELAY_S = 30.0
HEALTHY_AFTER_S = 60.0
_TICK_S = 0.2  # how often the supervisor looks at its child and its parent


@dataclass(frozen=True)
class Background:
    """The API process's handle on its supervisor."""

    pid: int
    wakeup: PipeWakeup

    def begin(self) -> None:
        """Let the worker process start its loops (the API serves now): it waits for this
        first byte, so the worker starts when the embedded one always did and leaves the
        cores to the API's start-up until then."""
        self.wakeup.notify()

    def terminate(self) -> None:
        """Begin the orderly stop (returns at once)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)

    def join(self, timeout_s: float) -> None:
        """Wait for the stop begun by ``terminate``; past ``timeout_s``, kill the supervisor
        (its worker process still exits when this process does)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(self.pid, os.WNOHANG)[0]:
                    return
            time.sleep(0.05)
        log.error("the worker process did not stop within %.0fs: killed", timeout_s)
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)


def start_background(container: Container, *, worker: bool, scheduler: bool) -> Background:
    """Fork the supervisor of a worker process running the worker and/or the scheduler;
    from now on this process's triggers wake that worker through a pipe."""
    read_fd, write_fd = os.pipe()
    # Nothing pooled crosses the fork: each process opens its own connections.
    container.engine.dispose()
    container.warehouse.engine.dispose()
    parent = os.getpid()
    # What exists now (modules, settings, the container) lives as long as the process: out of
    # the collector's sight, a collection never writes to it, so both processes keep sharing
    # its memory pages instead of copying them, and each collection has less to walk.
    gc.freeze()

    def supervisor() -> int:
        os.close(write_fd)  # only the API holds it: its exit closes the pipe
        return _supervise(
            parent, lambda first: _work(container, read_fd, worker, scheduler, wait=first)
        )

    pid = _fork(supervisor)
    os.close(read_fd)
    container.wakeup = PipeWakeup(write_fd)
    return Background(pid, container.wakeup)


def _fork(body: Callable[[], int]) -> int:
    """Run ``body`` in a child process that never returns into the caller's stack."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        code = body()
    except BaseException:
        log.exception("the worker process failed")
    finally:
        sys.stderr.flush()
        os._exit(code)


def _on_stop_signals(handler: Callable[[int, FrameType | None], None]) -> None:
    # SIGINT too: Ctrl-C in a terminal reaches the whole process group.
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _supervise(parent: int, work: Callable[[bool], int]) -> int:
    """Fork ``work`` (told whether it is the first), and again each time it dies of anything
    but a stop, until stopped or orphaned."""
    stopping = False
    child = 0

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    _on_stop_signals(stop)
    failures = 0
    first = True
    while True:
        started = time.monotonic()
        child = _fork(functools.partial(work, first))
        first = False
        if stopping:  # the signal came while forking
            stop(signal.SIGTERM, None)
        status = _wait(child)
        if stopping or os.getppid() != parent or os.waitstatus_to_exitcode(status) == 0:
            return 0
        failures = 0 if time.monotonic() - started >= HEALTHY_AFTER_S else failures + 1
        delay = min(2.0 ** (failures - 1), RESTART_MAX_DELAY_S) if failures else 0.0
        log.error(
            "the worker process (pid %d) %s; starting another in %.0fs",
            child,
            _described(status),
            delay,
        )
        child = 0
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not stopping and os.getppid() == parent:
            time.sleep(_TICK_S)
        if stopping or os.getppid() != parent:
            return 0


def _wait(child: int) -> int:
    """The child's wait status (it exits by itself when the API process is gone)."""
    while True:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            return status
        time.sleep(_TICK_S)


def _begun(fd: int, stop: threading.Event) -> bool:
    """Wait for the first byte on the pipe; False if stopped or the pipe closed first."""
    while not stop.is_set():
        if select.select([fd], [], [], _TICK_S)[0]:
            return bool(os.read(fd, 1))
    return False


def _described(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def _work(
    container: Container, wakeup_fd: int, with_worker: bool, with_scheduler: bool, wait: bool
) -> int:
    """The worker process: the loops, until a stop signal or the end of the API process;
    ``wait``: first for ``Background.begin``."""
    stop = threading.Event()
    api_gone = threading.Event()
    stop_on_signals(stop)
    if wait and not _begun(wakeup_fd, stop):
        return 0  # stopped, or the API ended, before it served

    def on_close() -> None:
        api_gone.set()
        stop.set()

    relay(wakeup_fd, container.wakeup, on_close)
    s = container.settings
    worker = container.worker(name="embedded") if with_worker else None
    loop = container.scheduler() if with_scheduler else None
    if worker is not None:
        worker.start()
        log.info(
            "embedded worker started (%s slots, process %d)", s.worker_concurrency, os.getpid()
        )
    if loop is not None:
        loop.start()
        log.info("embedded scheduler started (process %d)", os.getpid())
    stop.wait()
    # Without the API, nobody waits for this process: its runs go back to the queue at once.
    grace = 0.0 if api_gone.is_set() else s.shutdown_grace_s
    if loop is not None:
        loop.stop(grace)
    if worker is not None:
        worker.stop(grace)
    container.engine.dispose()
    return 0
