"""Stop signals never deadlock the process they stop (``cli/stop_signals.py``).

The failure it fixes: a second SIGTERM arrived while the main thread was inside ``stop.set()``
for the first, i.e. holding the event's lock, and the handler's own ``stop.set()`` waited for
that lock forever (``serve``'s worker process and its supervisor outlived the API). The
script below puts the main thread in exactly that state — the event's lock held — and sends
the signal then; it runs in a process of its own (its handlers replace pytest's)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os, signal, threading
from egress.cli.stop_signals import stop_on_signals

stop = threading.Event()
stop_on_signals(stop)
with stop._cond:  # as inside stop.set() or stop.wait(): the lock held by this thread
    os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, in this thread
    os.kill(os.getpid(), signal.SIGINT)
print("handled" if not stop.is_set() else "set while the lock was held?")
print("stopped" if stop.wait(10) else "not stopped")
"""


def test_a_signal_while_the_stop_events_lock_is_held_still_stops() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30, check=False
    )
    assert (done.returncode, done.stdout.split()) == (0, ["handled", "stopped"]), done.stderr
