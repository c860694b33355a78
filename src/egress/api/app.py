"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.responses import RedirectResponse

import egress
from egress.api import docs, limits, native
from egress.api.faces import extracts, idm, noco
from egress.container import Container

log = logging.getLogger(__name__)


def create_app(
    container: Container, *, with_worker: bool = True, with_scheduler: bool = False
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = container.worker(name="embedded") if with_worker else None
        app.state.worker = worker  # `egress serve` starts its shutdown at SIGTERM
        if worker is not None:
            worker.start()
            log.info("embedded worker started (%s slots)", container.settings.worker_concurrency)
        scheduler = container.scheduler() if with_scheduler else None
        if scheduler is not None:
            scheduler.start()
            log.info("embedded scheduler started")
        container.cache_details()  # only this process answers polls
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.stop(container.settings.shutdown_grace_s)
            if worker is not None:  # returns when the stop begun at SIGTERM is done
                worker.stop(container.settings.shutdown_grace_s)
            container.details_cache.detach()
            container.engine.dispose()

    app = FastAPI(
        title="Egress",
        version=egress.__version__,
        description="Asynchronous data extraction and bulk export.",
        lifespan=lifespan,
        dependencies=[Depends(limits.reject_unstorable)],
        docs_url=None,  # served from the package by api.docs, not from a CDN
        redoc_url=None,
    )
    app.state.container = container
    app.add_middleware(limits.BodyLimit, max_bytes=container.settings.max_body_bytes)
    native.install(app)
    extracts.install(app)
    idm.install(app)
    noco.install(app)
    docs.install(app)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
