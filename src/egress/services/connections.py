"""Connections: settings checked against the connector and the trust policy, secrets sealed."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from egress.crypto import SecretBox
from egress.db.connections import ConnectionRecord as ConnectionRecord
from egress.db.connections import ConnectionRepo
from egress.db.paging import Page
from egress.domain import audit as a
from egress.domain.audit import AuditObject
from egress.domain.errors import FieldError, Invalid, NotFound
from egress.domain.identity import Principal
from egress.domain.paging import PageRequest
from egress.services.audit import AuditService
from egress.sources import CONNECTORS
from egress.sources.policy import SourcePolicy

# Settings that say where a connection's secrets go: changing one without entering the secrets
# again would send the stored secrets to a new address (a server of the requester's choosing).
ADDRESS_SETTINGS = ("host", "port", "database", "user", "url", "endpoint", "region")
REENTER_SECRETS = "re-enter the secrets when the address changes"


class ConnectionService:
    """Connections: their settings checked, their secrets sealed and merged."""

    def __init__(
        self,
        connections: ConnectionRepo,
        secret_box: SecretBox,
        policy: SourcePolicy,
        audit: AuditService,
    ) -> None:
        self._connections = connections
        self._secret_box = secret_box
        self._policy = policy
        self._audit = audit

    def get(self, workspace_id: str, connection_id: str) -> ConnectionRecord:
        return self._connections.get(workspace_id, connection_id)

    def list_page(
        self, workspace_id: str, page: PageRequest, type_: str | None = None
    ) -> Page[ConnectionRecord]:
        """With ``type_``, only connections of that type (an unknown type is 404)."""
        if type_ is not None and type_ not in CONNECTORS:
            raise NotFound(
                f"no connection type {type_!r}; the types are: {', '.join(self.types())}"
            )
        return self._connections.list_page(workspace_id, page, type_)

    def types(self) -> list[str]:
        """The connection types this server reads."""
        return list(CONNECTORS)

    def delete(self, workspace_id: str, connection_id: str, by: Principal | None = None) -> None:
        self._connections.delete(workspace_id, connection_id)
        self._audit.record(
            a.CONNECTION_DELETE,
            AuditObject("connection", connection_id),
            by=by,
            workspace_id=workspace_id,
        )

    def checked_settings(
        self, type_: str, settings: dict[str, Any], secrets: dict[str, str]
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
            connector.admit(model, self._policy)
        stored: dict[str, Any] = model.model_dump(mode="json")
        return stored

    def create(
        self,
        workspace_id: str,
        name: str,
        type_: str,
        settings: dict[str, Any],
        secrets: dict[str, str],
        by: Principal | None = None,
    ) -> ConnectionRecord:
        stored = self.checked_settings(type_, settings, secrets)
        sealed = self._secret_box.seal(secrets) if secrets else None
        record = self._connections.create(workspace_id, name, type_, stored, sealed)
        self._audit.record(
            a.CONNECTION_CREATE,
            AuditObject("connection", record.id),
            by=by,
            workspace_id=workspace_id,
            detail={"secrets": sorted(secrets)},
        )
        return record

    def update(
        self,
        workspace_id: str,
        connection_id: str,
        name: str | None,
        settings: dict[str, Any] | None,
        secrets: dict[str, str] | None,
        by: Principal | None = None,
    ) -> ConnectionRecord:
        """Change a connection; ``None`` leaves a part unchanged. Sent secrets are merged in, or
        replace the stored ones when the address changes (then they must be sent)."""
        current = self._connections.get(workspace_id, connection_id)
        changes: dict[str, object] = {}
        if name is not None:
            changes["name"] = name
        new_settings = current.settings if settings is None else settings
        stored = self.checked_settings(current.type, new_settings, secrets or {})
        changes["settings"] = stored
        moved = _address(stored) != _address(_normal(current.type, current.settings))
        kept = self._secret_box.open(current.sealed_secrets)
        if moved and kept and secrets is None:
            raise Invalid.at(("body", "secrets"), REENTER_SECRETS)
        if secrets is not None:
            new_secrets = secrets if moved else {**kept, **secrets}
            changes["sealed_secrets"] = self._secret_box.seal(new_secrets) if new_secrets else None
        record = self._connections.update(workspace_id, connection_id, **changes)
        # What the request changed, and which secrets — never their values.
        sent = {"name": name, "settings": settings, "secrets": secrets}
        detail: dict[str, object] = {"changed": [k for k, v in sent.items() if v is not None]}
        if secrets is not None:
            detail["secrets"] = sorted(secrets)
        self._audit.record(
            a.CONNECTION_UPDATE,
            AuditObject("connection", connection_id),
            by=by,
            workspace_id=workspace_id,
            detail=detail,
        )
        return record

    def secret_names(self, record: ConnectionRecord) -> list[str]:
        return sorted(self._secret_box.open(record.sealed_secrets))


def _normal(type_: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Stored settings with today's defaults filled in (older rows may lack a field)."""
    try:
        normal: dict[str, Any] = (
            CONNECTORS[type_].settings_model.model_validate(settings).model_dump(mode="json")
        )
    except ValidationError:
        return settings
    return normal


def _address(settings: dict[str, Any]) -> dict[str, Any]:
    return {key: settings.get(key) for key in ADDRESS_SETTINGS}


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
