"""Seed 001 (extracts): snake_case on the wire. Mapping only, no rules (see ``faces``).

Mounted as two sub-applications, ``/api/v3.1`` (create) and ``/api/v3`` (the rest), so that
their errors take this face's dialect: every problem of the vendor's is 400/401/403/404, so
input it cannot process is 400 (not 422), and each problem repeats ``detail`` as the
vendor's ``details``. Fields are named as sent: snake_case, the logical names themselves.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from egress.api import errors, limits, openapi
from egress.api.faces.extracts.routes import v3, v31
from egress.api.wiring import DATABASE_UNAVAILABLE, SOURCE_ERRORS, declare_roles

DIALECT = errors.Dialect(unprocessable=400, details=True)


def wire_name(logical: str) -> str:
    return logical


def install(app: FastAPI) -> None:
    """Mount this face's paths on ``app`` (whose state holds the container)."""
    for prefix, router in (("/api/v3.1", v31), ("/api/v3", v3)):
        face = FastAPI(
            title="Egress — extracts (seed 001)",
            dependencies=[Depends(limits.reject_unstorable)],
        )
        face.state.container = app.state.container
        errors.install(face, wire_name, SOURCE_ERRORS, DATABASE_UNAVAILABLE, DIALECT)
        openapi.install(face, DIALECT)
        declare_roles(router)
        face.include_router(router)
        app.mount(prefix, face)
