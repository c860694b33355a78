"""The uvicorn server of ``egress serve`` and ``egress demo`` (imported only by them: client
commands do not pay for importing the web stack)."""

from __future__ import annotations

import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

from egress.worker.loop import Worker


class GracefulServer(uvicorn.Server):
    """uvicorn, with the embedded worker's shutdown started at the signal, alongside uvicorn's
    own drain of requests, so that both fit in one grace (EGRESS_SHUTDOWN_GRACE_S)."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, grace_s: float) -> None:
        super().__init__(config)
        self._app = app
        self._grace_s = grace_s

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        worker: Worker | None = getattr(self._app.state, "worker", None)
        if worker is not None and not self.should_exit:
            threading.Thread(
                target=worker.stop, args=(self._grace_s,), name="worker-stop", daemon=True
            ).start()
        super().handle_exit(sig, frame)
