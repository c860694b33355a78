"""Seed 003 (bulk export). Mapping only, no rules (see ``faces``): its routes call
``services.exports`` and present the seed's shapes (camelCase, like the native face, whose
error format it shares)."""

from __future__ import annotations

from fastapi import FastAPI

from egress.api.faces.idm import routes


def install(app: FastAPI) -> None:
    app.include_router(routes.router)
    app.include_router(routes.links)
