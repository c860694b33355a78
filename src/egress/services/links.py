"""Signed links: URLs that open one object without a bearer header, until they expire.

One place for every kind of link: execution files (``run-file``) and seed-003 bulk-export
files (``export-file``). A link's token is ``Signer("signed-link").sign`` of a small JSON
payload — kind, workspace, the object's ids, who it was issued to, expiry — so changing any part
of it (another file's ids, a later expiry) breaks the signature. Each kind has its own route
(``link_path``: ``/api/v1/links/<kind>/<token>``, except the export file's ``/export-files/``,
the path seed 003's clients were given), and ``open`` refuses a token of another kind. A link
expires ``ttl_s`` after it is issued unless the caller fixes the moment (an export file's link
expires at completedAt + ``EGRESS_EXPORT_URL_TTL_S``, the same URL whenever it is read). Keys
come from the signing ring (``EGRESS_SIGNING_KEYS``): links signed with an older key keep
working while it is in the ring.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from egress.domain.clock import Clock
from egress.domain.errors import Forbidden
from egress.domain.identity import Subject
from egress.signing import BadSignature, SigningRing

PURPOSE = "signed-link"
LINKS_PATH = "/api/v1/links"
# An execution's file: ids (configuration id, execution id, run number, sub-extract id — "" for
# the run's own download: its file, or the zip of a split run's parts).
RUN_FILE = "run-file"
# A bulk-export request's file: ids (request id,).
EXPORT_FILE = "export-file"
# Where each kind opens when not under LINKS_PATH, and what to do once its link has expired.
_PATHS = {EXPORT_FILE: "/export-files"}
_RENEW = {
    RUN_FILE: "get a fresh one from the execution",
    EXPORT_FILE: "export again for a new file",
}


@dataclass(frozen=True)
class LinkTarget:
    kind: str  # which route opens it, e.g. RUN_FILE
    workspace_id: str
    ids: tuple[str, ...]  # the object, in the kind's own order
    issued_to: Subject  # who the link was made for (type and id): the audit trail's actor


@dataclass(frozen=True)
class SignedLink:
    url: str
    expires_at: datetime


def link_path(kind: str) -> str:
    """The route prefix that opens links of ``kind`` (the token follows it)."""
    return _PATHS.get(kind, f"{LINKS_PATH}/{kind}")


class SignedLinks:
    """Issues and opens signed links; ``ttl_s`` is ``EGRESS_SIGNED_URL_TTL_S``."""

    def __init__(self, ring: SigningRing, clock: Clock, ttl_s: int) -> None:
        self._signer = ring.signer(PURPOSE)
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_s)

    def issue(
        self, target: LinkTarget, base_url: str, expires_at: datetime | None = None
    ) -> SignedLink:
        """An absolute link to ``target`` under ``base_url`` (``EGRESS_PUBLIC_URL``, else the
        request's own base URL), valid until ``expires_at`` (default: ``ttl_s`` from now)."""
        expires = (expires_at or self._clock() + self._ttl).replace(microsecond=0)
        payload = {
            "k": target.kind,
            "w": target.workspace_id,
            "i": list(target.ids),
            "a": [target.issued_to.type, target.issued_to.id],
            "x": int(expires.timestamp()),
        }
        token = self._signer.sign(json.dumps(payload, separators=(",", ":")).encode())
        return SignedLink(f"{base_url.rstrip('/')}{link_path(target.kind)}/{token}", expires)

    def open(self, kind: str, token: str) -> LinkTarget:
        """The target of a valid, unexpired link of ``kind``; Forbidden (403) otherwise."""
        try:
            payload = json.loads(self._signer.verify(token))
            if payload["k"] != kind:
                raise ValueError(kind)
            expires = datetime.fromtimestamp(int(payload["x"]), UTC)
            actor_type, actor_id = payload["a"]
            target = LinkTarget(
                kind,
                str(payload["w"]),
                tuple(str(i) for i in payload["i"]),
                Subject(str(actor_type), str(actor_id), ""),
            )
        except (BadSignature, ValueError, KeyError, TypeError) as exc:
            raise Forbidden("this link is not valid: it was not issued by this server") from exc
        if self._clock() >= expires:
            raise Forbidden(
                f"this link expired at {expires.isoformat().replace('+00:00', 'Z')}; "
                f"{_RENEW.get(kind, 'ask for a new one')}"
            )
        return target


@dataclass(frozen=True)
class LinkIssuer:
    """Signed links for one caller under one base URL: what a response that lists files uses."""

    links: SignedLinks
    base_url: str
    issued_to: Subject

    def __call__(self, kind: str, workspace_id: str, ids: tuple[str, ...]) -> SignedLink:
        return self.links.issue(LinkTarget(kind, workspace_id, ids, self.issued_to), self.base_url)
