"""Seed 003 (bulk export). Mapping only, no rules (see ``faces``): its routes call
``services.exports`` and present the seed's shapes (camelCase, like the native face, whose
error format it shares)."""

from __future__ import annotations

from fastapi import FastAPI

from egress.api.faces.idm import routes
from egress.api.wiring import declare_roles


def install(app: FastAPI) -> None:
    declare_roles(routes.router)
    app.include_router(routes.router)
    app.include_router(routes.links)
