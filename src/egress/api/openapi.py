"""Every face's OpenAPI document lists the errors each route can answer, as problem JSON.

FastAPI documents a route's success and a generic 422; what else a route answers follows from
what it declares, so it is derived here once for every face rather than written per route:

- a minimum role (``x-egress-role``, see ``api.wiring``): 401 without a valid bearer token and
  429 after too many failed sign-ins from the address; above ``viewer``, 403 for a lower role;
- a path parameter: 404 (an id that does not exist, or another workspace's);
- parameters or a body FastAPI validates (it documents a generic 422 then): the face's status
  for input it cannot process (422, or 400 for a vendor that documents no 422);
- a body: 400 (not JSON), 413 (over ``EGRESS_MAX_BODY_BYTES``);
- a method that changes something: 409 (a name taken, a run in the wrong state, …).

A route adds what is particular to it with FastAPI's ``responses=`` (a download's 416, a
signed link's 403); a status it lists without a body gets the problem body here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from egress.api.errors import NATIVE, PROBLEM, TITLES, Dialect
from egress.domain.identity import VIEWER

PROBLEM_REF = "#/components/schemas/Problem"
_CHANGES = {"post", "put", "patch", "delete"}
# FastAPI's own error schemas, which its default 422 names: problem JSON replaces them.
_FASTAPI_ERRORS = ("HTTPValidationError", "ValidationError")
_WHY = {
    400: "the request body is not JSON, or a cursor was not issued by this server",
    401: "no bearer token, or one that is expired, revoked or not this server's",
    403: "the token's role is below the one this route needs",
    404: "no such object in the token's workspace",
    409: "the object's state or a name already taken refuses the change",
    413: "the request body is over EGRESS_MAX_BODY_BYTES",
    422: "a field is invalid: ``errors`` names it",
    429: "too many requests (failed sign-ins, triggers, source calls): see Retry-After",
}


def problem_schema(dialect: Dialect) -> dict[str, Any]:
    """RFC 9457 problem details as ``api.errors.problem`` writes them in ``dialect``."""
    text = {"type": "string"}
    error = {
        "type": "object",
        "properties": {"field": text, "location": text, "message": text},
        "required": ["field", "location", "message"],
    }
    properties: dict[str, Any] = {
        "type": text,
        "title": text,
        "status": {"type": "integer"},
        "detail": text,
        "errors": {"type": "array", "items": error},
    }
    required = ["type", "title", "status", "detail"]
    if dialect.details:
        properties["details"] = text
        required.append("details")
    return {"title": "Problem", "type": "object", "properties": properties, "required": required}


def _errors(op: dict[str, Any], method: str, validated: bool, dialect: Dialect) -> dict[int, str]:
    """The statuses ``op`` can answer with a problem, each with why (``validated``: FastAPI
    checks its parameters or body)."""
    statuses: list[int] = []
    role = op.get("x-egress-role")
    if role is not None:
        statuses += [401, 429] + ([403] if role != VIEWER else [])
        if method in _CHANGES:
            statuses.append(409)
    if any(p["in"] == "path" for p in op.get("parameters", [])):
        statuses.append(404)
    if validated:
        statuses.append(dialect.unprocessable)
    if "requestBody" in op:
        statuses += [400, 413]
    why = dict(_WHY)
    if dialect.unprocessable != 422:
        why[dialect.unprocessable] = f"{_WHY[400]}, or a field is invalid: ``errors`` names it"
    return {s: why[s] for s in sorted(statuses)}


def _is_fastapi_error(response: dict[str, Any]) -> bool:
    ref = str(response.get("content", {}).get("application/json", {}).get("schema", {}))
    return any(name in ref for name in _FASTAPI_ERRORS)


def document_problems(doc: dict[str, Any], dialect: Dialect = NATIVE) -> dict[str, Any]:
    """``doc`` with every operation's problem responses (see the module's docstring)."""
    content = {PROBLEM: {"schema": {"$ref": PROBLEM_REF}}}
    for methods in doc.get("paths", {}).values():
        for method, op in methods.items():
            responses: dict[str, Any] = op.setdefault("responses", {})
            generic = [s for s, r in responses.items() if _is_fastapi_error(r)]
            for status in generic:
                del responses[status]
            for code, why in _errors(op, method, bool(generic), dialect).items():
                responses.setdefault(str(code), {"description": why})
            for key, response in responses.items():
                if key[0] in "45" and "content" not in response:
                    response["content"] = content
                    response.setdefault("description", TITLES.get(int(key), "Error"))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_ERRORS:
        schemas.pop(name, None)
    schemas["Problem"] = problem_schema(dialect)
    return doc


def install(app: FastAPI, dialect: Dialect = NATIVE) -> None:
    """Serve ``app``'s document with its problem responses (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = document_problems(doc, dialect)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
