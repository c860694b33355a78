"""The uvicorn server of ``egress serve`` and ``egress demo`` (imported only by them: client
commands do not pay for importing the web stack)."""

from __future__ import annotations

import socket
import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

from egress.cli.background import Background
from egress.worker.loop import Worker


class GracefulServer(uvicorn.Server):
    """uvicorn, with the worker's shutdown started at the signal, alongside uvicorn's own drain
    of requests, so that both fit in one grace (EGRESS_SHUTDOWN_GRACE_S): the embedded
    worker's thread, or the worker process (``background``)."""

    def __init__(
        self,
        config: uvicorn.Config,
        app: FastAPI,
        grace_s: float,
        background: Background | None = None,
    ) -> None:
        super().__init__(config)
        self._app = app
        self._grace_s = grace_s
        self.background = background

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.background is not None and self.started:
            self.background.begin()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        worker: Worker | None = getattr(self._app.state, "worker", None)
        if not self.should_exit:
            if worker is not None:
                threading.Thread(
                    target=worker.stop, args=(self._grace_s,), name="worker-stop", daemon=True
                ).start()
            if self.background is not None:
                self.background.terminate()
        super().handle_exit(sig, frame)

    def join_background(self, margin_s: float) -> None:
        """After serving: stop the worker process (begun at the signal, if one came) and wait
        for it, at most the grace and ``margin_s``."""
        if self.background is not None:
            self.background.terminate()
            self.background.join(self._grace_s + margin_s)
