"""The sign-in page's defence against cross-site request forgery.

The page (``GET /oauth/authorize``) gives the browser a random cookie (``HttpOnly``,
``SameSite=Strict``) and puts a signed, expiring token in a hidden form field; the token is
bound to that cookie and to the authorization request (its query parameters). A form posted
from another site has no such token, nor can it make one for the victim's cookie, so
``POST /oauth/authorize`` refuses it (403) before looking at any password: nobody can sign a
browser in to an attacker's account, nor replay a form for another client or redirect URI.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable

from egress.domain.clock import Clock
from egress.domain.errors import Forbidden
from egress.signing import BadSignature, SigningRing

FORM_PURPOSE = "oauth-sign-in-form"
# A person reading the page and typing a password: ten minutes, then the page is reloaded.
FORM_TTL_S = 600
BROWSER_COOKIE = "egress_sign_in"
FORM_FIELD = "csrf"
_REFUSED = (
    "this sign-in form has expired or was not sent from this server's sign-in page; "
    "reload the page and try again"
)


def new_browser_id() -> str:
    """The cookie's value: random, so that no other site can know it."""
    return secrets.token_urlsafe(24)


def _binding(browser: str, request_params: Iterable[tuple[str, str]]) -> str:
    text = json.dumps([browser, sorted(request_params)])
    return hashlib.sha256(text.encode()).hexdigest()


class SignInForms:
    def __init__(self, signing: SigningRing, clock: Clock, ttl_s: int = FORM_TTL_S) -> None:
        self._signer = signing.signer(FORM_PURPOSE)
        self._clock = clock
        self._ttl_s = ttl_s

    def issue(self, browser: str, request_params: Iterable[tuple[str, str]]) -> str:
        """The hidden field's value for this browser and authorization request."""
        expires = int(self._clock().timestamp()) + self._ttl_s
        claims = {"b": _binding(browser, request_params), "exp": expires}
        return self._signer.sign(json.dumps(claims).encode())

    def check(
        self, token: str | None, browser: str | None, request_params: Iterable[tuple[str, str]]
    ) -> None:
        """Forbidden (403) unless ``token`` was issued for this browser and request and has
        not expired."""
        if not token or not browser:
            raise Forbidden(_REFUSED)
        try:
            claims = json.loads(self._signer.verify(token))
        except (BadSignature, ValueError):
            raise Forbidden(_REFUSED) from None
        fresh = isinstance(claims, dict) and claims.get("exp", 0) > self._clock().timestamp()
        if not fresh or claims.get("b") != _binding(browser, request_params):
            raise Forbidden(_REFUSED)
