"""Errors the rules raise; the API turns each class into one HTTP status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from egress.domain.identity import Subject


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field; ``loc`` is its path, e.g. ``("body", "fields", 2)``."""

    loc: tuple[str | int, ...]
    msg: str


def describe(loc: tuple[str | int, ...], msg: str) -> str:
    """A field problem in one line: ``body.date_from: must be a date``."""
    return f"{'.'.join(str(p) for p in loc)}: {msg}"


@dataclass
class EgressError(Exception):
    detail: str

    def __str__(self) -> str:
        return self.detail


@dataclass
class Unauthenticated(EgressError):
    """The request carries no valid credentials: missing, unknown, expired or revoked (401).

    ``workspace_id``/``subject``: whose credential it was, when it names one (an expired or
    revoked token): the audit trail files the failed sign-in there."""

    workspace_id: str | None = None
    subject: Subject | None = None


@dataclass
class NotFound(EgressError):
    """The object does not exist in the caller's workspace (404, never 403)."""


@dataclass
class Forbidden(EgressError):
    """The caller's role may not do this in its workspace (403)."""


@dataclass
class Conflict(EgressError):
    """The request is valid but the object's current state forbids it (409)."""


@dataclass
class Busy(EgressError):
    """Too many calls of this kind are running; retry after ``retry_after_s`` (429)."""

    retry_after_s: int = 1


@dataclass
class FieldProblem(EgressError):
    """A problem with named input fields; ``errors`` point at them."""

    errors: list[FieldError] = field(default_factory=list)

    @classmethod
    def at(cls, loc: tuple[str | int, ...], msg: str) -> Self:
        """The problem of one field, named by its logical name (``("body", "date_from")``):
        each face names it as its clients send it."""
        return cls(detail=describe(loc, msg), errors=[FieldError(loc, msg)])


@dataclass
class Invalid(FieldProblem):
    """The input breaks a rule (422)."""


@dataclass
class BadRequest(FieldProblem):
    """The input is not something this server could have issued, e.g. a forged cursor (400)."""
