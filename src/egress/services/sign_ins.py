"""Every sign-in goes through here: refused early (429) for an address that failed too often,
recorded in the audit trail when it fails, and the caller stamped with its source address.

The bearer-token check of ``api/wiring.py`` calls ``authenticate``; the OAuth sign-in page and
token endpoint (``services.oauth``), which check credentials of their own, call ``before``,
then ``succeeded`` or ``failed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from egress.domain import audit as a
from egress.domain.errors import Unauthenticated
from egress.domain.identity import Principal, Subject
from egress.services.audit import AuditService
from egress.services.limits import RateLimits
from egress.services.revocation import NotRemembered, only_remembered


class SignInGuard:
    def __init__(self, audit: AuditService, limits: RateLimits) -> None:
        self._audit = audit
        self._limits = limits

    def authenticate(
        self,
        source_address: str | None,
        check: Callable[[], Principal],
        method: str = "bearer",
    ) -> Principal:
        """``check()``'s caller from ``source_address``. A failure (``Unauthenticated``) is
        recorded and counted against the address, then raised again — or replaced by Busy
        (429) when it was one too many."""
        self._limits.before_sign_in(source_address)
        try:
            principal = check()
        except Unauthenticated as exc:
            self.failed(source_address, exc.workspace_id, exc.subject, method, exc.detail)
            raise
        return replace(principal, source_address=source_address)

    def before(self, source_address: str | None) -> None:
        """Busy (429) while the address has used up its failed sign-ins."""
        self._limits.before_sign_in(source_address)

    def succeeded(
        self, source_address: str | None, workspace_id: str | None, actor: Subject, method: str
    ) -> None:
        self._audit.record(
            a.SIGN_IN,
            workspace_id=workspace_id,
            actor=actor,
            source_address=source_address,
            detail={"method": method},
        )

    def failed(
        self,
        source_address: str | None,
        workspace_id: str | None,
        actor: Subject | None,
        method: str,
        reason: str,
    ) -> None:
        """Record the failure and count it against the address; Busy (429) when it was one
        too many. ``workspace_id`` and ``actor``: whom the credential named, if anyone."""
        self._audit.record(
            a.SIGN_IN,
            workspace_id=workspace_id,
            actor=actor,
            source_address=source_address,
            outcome=a.FAILURE,
            detail={"method": method, "reason": reason},
        )
        self._limits.failed_sign_in(source_address)

    def remembered(
        self, source_address: str | None, check: Callable[[], Principal]
    ) -> Principal | None:
        """``authenticate`` answered from memory alone (the revocation cache), or None when
        that takes the database — a read, or recording a failure: call ``authenticate`` then,
        off the event loop."""
        try:
            with only_remembered():
                self._limits.before_sign_in(source_address)
                principal = check()
        except (NotRemembered, Unauthenticated):
            return None
        return replace(principal, source_address=source_address)
