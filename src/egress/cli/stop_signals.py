"""SIGTERM and SIGINT setting a stop ``Event`` without taking its lock in the handler.

A Python signal handler runs in the main thread between two bytecodes, possibly while that
thread holds the event's lock: inside ``stop.set()`` for an earlier signal, or on its way out of
``stop.wait()``. ``Event.set`` in the handler then waits for that lock forever. It happened:
Ctrl-C (or a SIGTERM to the process group) reaches ``serve``'s worker process twice, from the
terminal and from its supervisor, and the worker and supervisor outlived the API for good. The
handler only writes a byte to a pipe (a system call, no lock); a thread of its own reads it and
sets the event.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from types import FrameType


def stop_on_signals(stop: threading.Event) -> None:
    """From now on SIGTERM and SIGINT (Ctrl-C reaches the whole process group) set ``stop``."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(BlockingIOError):  # the pipe is full: a stop is pending
            os.write(write_fd, b"\0")

    def relay() -> None:
        os.read(read_fd, 1)
        stop.set()

    threading.Thread(target=relay, name="stop-signals", daemon=True).start()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
