"""Every sign-in goes through here: refused early (429) for an address that failed too often,
recorded in the audit trail when it fails, and the caller stamped with its source address.

Today the bearer-token check of ``api/wiring.py`` uses it; an OAuth sign-in wraps its own
credential check the same way (and records its successes with ``AuditService.record``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from egress.domain import audit as a
from egress.domain.errors import Unauthenticated
from egress.domain.identity import Principal
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
            self._audit.record(
                a.SIGN_IN,
                workspace_id=exc.workspace_id,
                actor=exc.subject,
                source_address=source_address,
                outcome=a.FAILURE,
                detail={"method": method, "reason": exc.detail},
            )
            self._limits.failed_sign_in(source_address)
            raise
        return replace(principal, source_address=source_address)

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
