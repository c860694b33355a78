"""Connections: settings checked against the connector and the trust policy, secrets sealed."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from egress.container import Container
from egress.db.connections import ConnectionRecord
from egress.domain.errors import FieldError, Invalid
from egress.sources import CONNECTORS


def checked_settings(
    c: Container, type_: str, settings: dict[str, Any], secrets: dict[str, str]
) -> dict[str, Any]:
    """The settings as stored: valid for the connector, inside the trust policy, and with
    only secrets the connector knows."""
    connector = CONNECTORS[type_]
    model = _validated(connector.settings_model, settings)
    unknown = sorted(set(secrets) - connector.secret_names)
    if unknown:
        allowed = ", ".join(sorted(connector.secret_names)) or "none"
        raise Invalid.at(
            ("body", "secrets", unknown[0]),
            f"unknown secret for a {type_} connection (allowed: {allowed})",
        )
    if connector.admit is not None:
        connector.admit(model, c.policy)
    stored: dict[str, Any] = model.model_dump(mode="json")
    return stored


def create(
    c: Container,
    workspace_id: str,
    name: str,
    type_: str,
    settings: dict[str, Any],
    secrets: dict[str, str],
) -> ConnectionRecord:
    stored = checked_settings(c, type_, settings, secrets)
    sealed = c.secret_box.seal(secrets) if secrets else None
    return c.connections.create(workspace_id, name, type_, stored, sealed)


def update(
    c: Container,
    workspace_id: str,
    connection_id: str,
    name: str | None,
    settings: dict[str, Any] | None,
    secrets: dict[str, str] | None,
) -> ConnectionRecord:
    """Change a connection; ``None`` leaves a part unchanged, sent secrets are merged in."""
    current = c.connections.get(workspace_id, connection_id)
    changes: dict[str, object] = {}
    if name is not None:
        changes["name"] = name
    if secrets is not None:
        merged = {**c.secret_box.open(current.sealed_secrets), **secrets}
        changes["sealed_secrets"] = c.secret_box.seal(merged)
    new_settings = current.settings if settings is None else settings
    changes["settings"] = checked_settings(c, current.type, new_settings, secrets or {})
    return c.connections.update(workspace_id, connection_id, **changes)


def secret_names(c: Container, record: ConnectionRecord) -> list[str]:
    return sorted(c.secret_box.open(record.sealed_secrets))


def _validated(model: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    """Validate free-form settings, reporting errors at ``body.settings.<field>``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(("body", "settings", *(str(p) for p in e["loc"])), e["msg"])
            for e in exc.errors()
        ]
        detail = "; ".join(f"settings.{'.'.join(map(str, e.loc[2:]))}: {e.msg}" for e in errors)
        raise Invalid(detail=f"invalid settings: {detail}", errors=errors) from exc
