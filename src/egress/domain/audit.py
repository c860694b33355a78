"""The audit trail's vocabulary: what an entry says, the actions recorded and their outcomes.

An entry is written by ``services.audit.AuditService.record`` and never changed or deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from egress.domain.identity import Subject

SUCCESS = "success"
FAILURE = "failure"
OUTCOMES = (SUCCESS, FAILURE)

# Actions: "<object>.<verb>". A new audited action adds its name here (the endpoint's
# ``action`` filter accepts exactly these).
SIGN_IN = "sign-in"
TOKEN_CREATE = "token.create"
TOKEN_REVOKE = "token.revoke"
CONNECTION_CREATE = "connection.create"
CONNECTION_UPDATE = "connection.update"
CONNECTION_DELETE = "connection.delete"
CONFIGURATION_CREATE = "configuration.create"
CONFIGURATION_UPDATE = "configuration.update"
CONFIGURATION_SUBMIT = "configuration.submit"
CONFIGURATION_DELETE = "configuration.delete"
EXECUTION_TRIGGER = "execution.trigger"
EXECUTION_RERUN = "execution.rerun"
EXECUTION_CANCEL = "execution.cancel"
FILE_DOWNLOAD = "file.download"
ZIP_DOWNLOAD = "zip.download"
ROLE_CHANGE = "role.change"
USER_INVITE = "user.invite"
USER_PASSWORD = "user.password"
USER_REMOVE = "user.remove"
CLIENT_CREATE = "client.create"
CLIENT_REVOKE = "client.revoke"
EXPORT_CREATE = "export.create"
EXPORT_CANCEL = "export.cancel"
ACTIONS = (
    SIGN_IN,
    TOKEN_CREATE,
    TOKEN_REVOKE,
    CONNECTION_CREATE,
    CONNECTION_UPDATE,
    CONNECTION_DELETE,
    CONFIGURATION_CREATE,
    CONFIGURATION_UPDATE,
    CONFIGURATION_SUBMIT,
    CONFIGURATION_DELETE,
    EXECUTION_TRIGGER,
    EXECUTION_RERUN,
    EXECUTION_CANCEL,
    FILE_DOWNLOAD,
    ZIP_DOWNLOAD,
    ROLE_CHANGE,
    USER_INVITE,
    USER_PASSWORD,
    USER_REMOVE,
    CLIENT_CREATE,
    CLIENT_REVOKE,
    EXPORT_CREATE,
    EXPORT_CANCEL,
)
# Who acts when nobody signed in: a failed sign-in's unknown credential.
ANONYMOUS = Subject("anonymous", "", "")
# The operator at the machine: ``egress admin`` commands.
OPERATOR = Subject("operator", "cli", "egress admin")
# A download through a signed link: the link, not a bearer token, is the credential.
SIGNED_LINK = "signed-link"


@dataclass(frozen=True)
class AuditObject:
    """What an action was done to: ``type`` (token, connection, configuration, execution,
    file, user, …) and its id."""

    type: str
    id: str


@dataclass(frozen=True)
class AuditEvent:
    workspace_id: str | None
    at: datetime
    actor: Subject
    action: str
    object: AuditObject | None
    outcome: str
    source_address: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None  # assigned when stored


@dataclass(frozen=True)
class AuditFilter:
    """The endpoint's filters: the actor's id, the action, ``start <= at < end``."""

    actor: str | None = None
    action: str | None = None
    start: datetime | None = None
    end: datetime | None = None
