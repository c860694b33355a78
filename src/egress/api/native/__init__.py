"""The native face: Egress's own API (the seed-000 shapes), camelCase on the wire.

Its routes parse a request, call one service method and present the answer
(``presenters``); the rules live in the services and the domain.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic.alias_generators import to_camel

from egress.api import errors, oauth, openapi
from egress.api.native.poll import FastPoll
from egress.api.native.routes import (
    audit,
    configurations,
    connections,
    data_tables,
    executions,
    health,
    identity,
    links,
    schedules,
    templates,
)
from egress.api.wiring import DATABASE_UNAVAILABLE, SOURCE_ERRORS, declare_roles


def wire_name(logical: str) -> str:
    """A field's logical name (``date_from``) as this face's clients send it (``dateFrom``)."""
    return to_camel(logical) if "_" in logical else logical


def install(app: FastAPI) -> None:
    """This face's routes, error format and OpenAPI document."""
    [poll] = [
        r
        for r in executions.router.routes
        if isinstance(r, APIRoute) and r.endpoint is executions.get_execution
    ]
    # Added before the error format's middleware, so inside it: a poll cancelled at shutdown
    # answers 503 like any request.
    app.add_middleware(FastPoll, route=poll)
    errors.install(app, wire_name, SOURCE_ERRORS, DATABASE_UNAVAILABLE)
    openapi.install(app)
    for module in (
        health,
        oauth,
        identity,
        connections,
        templates,
        configurations,
        schedules,
        executions,
        links,
        data_tables,
        audit,
    ):
        declare_roles(module.router)
        app.include_router(module.router)
