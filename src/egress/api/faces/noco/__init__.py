"""Seed 002 (workspace extraction runs). Mapping only, no rules (see ``faces``): its routes
call ``services.extraction_runs`` and ``services.exports`` (the request store bulk export
shares). The seed defines no error format of its own, so the face speaks the native one
(problem JSON, 422 for input it cannot process), and its fields are the native camelCase
names the seed uses too (``whereClause``, ``selectAll``, ``extractOnlyNew``)."""

from __future__ import annotations

from fastapi import FastAPI

from egress.api.faces.noco import routes
from egress.api.wiring import declare_roles


def install(app: FastAPI) -> None:
    declare_roles(routes.router)
    app.include_router(routes.router)
