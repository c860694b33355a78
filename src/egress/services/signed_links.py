"""Signed, expiring links that work without a bearer token (a browser, ``curl``): the token in
the URL is the signing ring's MAC over a ``domain.links.Link`` (workspace, target, expiry) for
one purpose, so a link made for one use never opens another.

API: ``SignedLinks(ring, purpose)``; ``url(base_url, path, link)`` → an absolute URL ending
with the token (``path`` is formatted with ``{token}``); ``open(token, now)`` → the ``Link`` or
``Forbidden`` (tampered, malformed, or expired). Keys rotate like every signed value: the
first key of the ring signs, all verify.
"""

from __future__ import annotations

from datetime import datetime

from egress.domain.errors import Forbidden
from egress.domain.links import Link
from egress.signing import BadSignature, SigningRing

NOT_VALID = "this link is not valid: it was not made by this server or was changed"
EXPIRED = "this link expired at {at}; ask for a new one"


class SignedLinks:
    def __init__(self, ring: SigningRing, purpose: str) -> None:
        self._signer = ring.signer(purpose)

    def token(self, link: Link) -> str:
        return self._signer.sign(link.to_json())

    def url(self, base_url: str, path: str, link: Link) -> str:
        """``base_url`` (e.g. ``EGRESS_PUBLIC_URL``) joined with ``path`` holding the token."""
        return base_url.rstrip("/") + path.format(token=self.token(link))

    def open(self, token: str, now: datetime) -> Link:
        try:
            link = Link.from_json(self._signer.verify(token))
        except (BadSignature, ValueError):
            link = None
        if link is None:
            raise Forbidden(NOT_VALID)
        if link.expired(now):
            raise Forbidden(EXPIRED.format(at=link.expires_at.isoformat()))
        return link
