"""Roles, what each may do, and API token lifetimes: the rules every face (CLI, HTTP) shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from egress.domain.errors import Forbidden, Invalid, NotFound

ADMIN = "admin"
EDITOR = "editor"
VIEWER = "viewer"
ROLES = (ADMIN, EDITOR, VIEWER)
# Each role may do everything the roles below it may: viewer < editor < admin.
_RANK = {VIEWER: 0, EDITOR: 1, ADMIN: 2}

# A token that outlives ten years is a token nobody remembers to rotate.
MAX_TOKEN_DAYS = 3650
# Generated tokens: a recognisable prefix (secret scanners, logs) and 256 random bits.
# ``egr_``: made by an operator (``egress admin create-token``); ``egp_``: a personal access
# token made through the API, acting for its creator.
TOKEN_PREFIX = "egr_"
PERSONAL_TOKEN_PREFIX = "egp_"
TOKEN_BYTES = 32


@dataclass(frozen=True)
class Subject:
    """Who acts: ``type`` is user | client | token | system; ``name`` is for people to read."""

    type: str
    id: str
    name: str


# Anything Egress starts without a caller: schedules, backfills, executions from before 0017.
SYSTEM = Subject("system", "system", "system")


def subject_json(subject: Subject) -> dict[str, str]:
    return {"type": subject.type, "id": subject.id, "name": subject.name}


def subject_from_json(value: object) -> Subject:
    """A stored subject; anything else (NULL from before it was stored) is the system."""
    if isinstance(value, dict) and all(isinstance(value.get(k), str) for k in ("type", "id")):
        return Subject(value["type"], value["id"], str(value.get("name") or ""))
    return SYSTEM


@dataclass(frozen=True)
class Principal:
    """Who is calling: every repository call is scoped by ``workspace_id``.

    ``subject`` is the credential as authenticated; ``on_behalf_of`` the user behind a personal
    token, when there is one. ``source_address`` is where the request came from (the audit
    trail records it; None outside HTTP).
    """

    workspace_id: str
    role: str  # one of ROLES
    subject: Subject
    auth_method: str = "token"
    on_behalf_of: Subject | None = None
    source_address: str | None = None

    @property
    def actor(self) -> Subject:
        """Who rules that speak of "the user" count: one active export per user, audit actor."""
        return self.on_behalf_of or self.subject


def own_workspace(principal: Principal, workspace_id: str, noun: str = "workspace") -> str:
    """A workspace named in a path (seed 003's firm, seed 002's workspace) is the caller's own;
    any other is not found, never forbidden (no existence oracle). A UUID's hex digits are
    read in either case (RFC 9562), so an upper-case id names the same workspace."""
    if workspace_id.lower() != principal.workspace_id.lower():
        raise NotFound(f"{noun} {workspace_id} not found")
    return principal.workspace_id


# Long enough that a guessed password is not the weak point (NIST SP 800-63B asks for 8+).
MIN_PASSWORD_LENGTH = 12

# Workspace and token names fit their columns and print on one line.
MAX_NAME_LENGTH = 200


def check_name(name: str, loc: tuple[str | int, ...]) -> str:
    if not name.strip() or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise Invalid.at(
            loc, f"must be 1 to {MAX_NAME_LENGTH} printable characters, not only spaces"
        )
    return name


def check_role(role: str, loc: tuple[str | int, ...] = ("role",)) -> str:
    if role not in ROLES:
        raise Invalid.at(loc, f"unknown role {role!r}; roles are: {', '.join(ROLES)}")
    return role


def at_least(role: str, minimum: str) -> bool:
    """A role stored before roles were checked (e.g. ``member``) ranks below every role."""
    return _RANK.get(role, -1) >= _RANK[minimum]


def lower_role(a: str, b: str) -> str:
    """The lesser of two roles: a personal token never outranks the one who made it."""
    return a if _RANK.get(a, -1) <= _RANK.get(b, -1) else b


def require_role(role: str, minimum: str, action: str) -> None:
    """``action`` completes "… needs the <minimum> role", e.g. "triggering executions"."""
    if not at_least(role, minimum):
        raise Forbidden(f"{action} needs the {minimum} role; this token's role is {role!r}")


def require_admin(role: str, action: str) -> None:
    """Connections, SQL templates, users, clients and others' tokens are the admin's.

    ``action`` completes "… needs the admin role", e.g. "changing connections".
    """
    require_role(role, ADMIN, action)


def token_expiry(now: datetime, days: int | None) -> datetime | None:
    """When a token made ``now`` stops working: ``days`` whole days later, or never (None)."""
    if days is None:
        return None
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise Invalid.at(("expiresIn",), f"must be between 1 and {MAX_TOKEN_DAYS} days, not {days}")
    return now + timedelta(days=days)


def token_state(now: datetime, expires_at: datetime | None, revoked_at: datetime | None) -> str:
    """``valid``, ``expired`` or ``revoked``: only a valid token authenticates."""
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return "valid"
