"""Short-lived access tokens: JWTs signed with ES256, verified locally (no database read).

The EC keys are derived from the signing ring (``EGRESS_SIGNING_KEYS``), one per ring key and
named by its id (``kid``): every replica sharing the ring signs and verifies alike with nothing
more to distribute, and rotating the ring (``egress admin rotate-signing-key``) rotates these
keys with it — the first key signs, every key still in the ring verifies, so tokens signed
before a rotation work until they expire. The public halves are the JWKS
(``/oauth/jwks.json``).

Whether the token's subject still has access (revoked client, removed user, changed role) is
not in the token: ``services.identity`` checks it against the revocation cache.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from egress.domain.clock import Clock
from egress.domain.errors import Unauthenticated
from egress.signing import SigningKey, SigningRing

ALGORITHM = "ES256"
ISSUER = "egress"
# Mixed into the derivation: the EC key is never the HMAC key itself nor any other derived value.
_PURPOSE = "jwt-es256-key"
# The order of the P-256 group: a private key is a number in [1, n-1].
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _ec_key(ring: SigningRing, key: SigningKey) -> ECKey:
    # 64 bytes of HMAC output reduced mod n-1: the bias is about 2^-256, i.e. none.
    seed = ring.mac(key, _PURPOSE, b"1") + ring.mac(key, _PURPOSE, b"2")
    scalar = int.from_bytes(seed, "big") % (_P256_ORDER - 1) + 1
    private = ec.derive_private_key(scalar, ec.SECP256R1())
    return ECKey.import_key(private, parameters={"kid": key.id, "use": "sig", "alg": ALGORITHM})


def looks_like_jwt(token: str) -> bool:
    """A JWS compact token (``header.payload.signature``, header starting ``{"``), not one of
    Egress's opaque ``egr_``/``egp_`` tokens."""
    return token.startswith("eyJ") and token.count(".") == 2


class AccessTokens:
    def __init__(self, ring: SigningRing, clock: Clock, ttl_s: int) -> None:
        self._clock = clock
        self.ttl_s = ttl_s
        self._signing = _ec_key(ring, ring.current)
        self._keys = KeySet([_ec_key(ring, k) for k in ring.keys])

    def issue(self, claims: Mapping[str, Any]) -> str:
        now = int(self._clock().timestamp())
        body = {
            **claims,
            "iss": ISSUER,
            "iat": now,
            "exp": now + self.ttl_s,
            "jti": secrets.token_urlsafe(12),
        }
        header = {"alg": ALGORITHM, "kid": self._signing.kid}
        return jwt.encode(header, body, self._signing, algorithms=[ALGORITHM])

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token this server signed and that has not expired."""
        return self.current(self.signed_claims(token))

    def signed_claims(self, token: str) -> dict[str, Any]:
        """The claims of a token this server signed, expired or not: what may be remembered
        for the token (the signature check is most of the cost of ``verify``)."""
        try:
            return dict(jwt.decode(token, self._keys, algorithms=[ALGORITHM]).claims)
        except (JoseError, ValueError) as exc:  # ValueError: not JSON, or an unknown key id
            raise Unauthenticated("the bearer token is not valid") from exc

    def current(self, claims: dict[str, Any]) -> dict[str, Any]:
        """``claims`` if they are valid now (issuer, expiry): checked on every use."""
        registry = jwt.JWTClaimsRegistry(
            now=int(self._clock().timestamp()),
            leeway=0,
            iss={"essential": True, "value": ISSUER},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            reason = "has expired" if exc.error == "expired_token" else "is not valid"
            raise Unauthenticated(f"the bearer token {reason}") from exc
        except ValueError as exc:  # a claim of the wrong type
            raise Unauthenticated("the bearer token is not valid") from exc
        return claims

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=False) for k in self._keys.keys]}
