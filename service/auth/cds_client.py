"""The CDS client's JWT (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients).

A CDS client (the EHR) calls a CDS service with ``Authorization: Bearer <JWT>``, signed with a
key from the JWK Set at the JWT's ``jku``. :class:`CdsJwtVerifier` checks it (one per app, in
the app's services; ``service.api.deps.VerifiedCdsClient`` is the dependency that calls it).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from service.auth.api_tokens import LEEWAY_SECONDS, validate_claims
from service.auth.jwks import ASYMMETRIC_ALGS, JwksCache
from service.config import Settings
from service.errors import BearerError, TokenError
from service.state.base import SessionStore
from service.urls import normalise_issuer, same_origin

__all__ = ["CdsCaller", "CdsJwtVerifier", "cds_bearer_token", "jku_allowed"]


@dataclass(frozen=True, slots=True)
class CdsCaller:
    """A CDS client whose JWT passed every check."""

    issuer: str
    token_id: str
    tenant: str | None


class CdsJwtVerifier:
    """Checks ``Authorization: Bearer <JWT>`` from a CDS client.

    The issuer must be in ``KETAMINE_CDS_ALLOWED_ISSUERS``; its keys come from the JWT's ``jku``
    only when that URL is on the issuer's own origin (so a token cannot make us fetch arbitrary
    URLs); the signature must be asymmetric; ``aud`` must be this endpoint's URL; ``exp``, ``iat``
    and ``jti`` must be present, and a ``jti`` is accepted once.
    """

    def __init__(self, settings: Settings, store: SessionStore | None) -> None:
        self._issuers = {normalise_issuer(i) for i in settings.cds_allowed_issuers}
        self._timeout = settings.fhir_timeout_seconds
        self._store = store
        self._keys: dict[str, JwksCache] = {}

    async def verify(self, token: str, audiences: list[str]) -> CdsCaller:
        try:
            compact = jws.extract_compact(token.encode())
            header = compact.headers()
            claims = json.loads(compact.payload)
        except (JoseError, ValueError, UnicodeError):
            raise BearerError("The CDS client's JWT is malformed.") from None
        if not isinstance(claims, dict):
            raise BearerError("The CDS client's JWT carries no claims.")
        if header.get("alg") not in ASYMMETRIC_ALGS or not header.get("kid"):
            raise BearerError("The JWT must name its key (kid) and an asymmetric algorithm.")
        iss = claims.get("iss")
        if not isinstance(iss, str) or normalise_issuer(iss) not in self._issuers:
            raise BearerError("The JWT's issuer is not an allowed CDS client.")
        jku = header.get("jku")
        if not isinstance(jku, str) or not jku_allowed(jku, iss):
            raise BearerError("The JWT's jku must be a JWK Set URL on its issuer's origin.")
        cache = self._keys.get(jku)
        if cache is None:
            cache = self._keys[jku] = JwksCache(jku, timeout=self._timeout)
        try:
            decoded = await cache.decode(token)
        except TokenError as err:
            raise BearerError(str(err)) from None
        registry = JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": iss},
            aud={"essential": True, "values": audiences},
            exp={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
        )
        validate_claims(registry, decoded.claims, subject="The JWT",
                        expired="The CDS client's JWT has expired.")
        jti = str(decoded.claims["jti"])
        await self._once(iss, jti, decoded.claims.get("exp"))
        tenant = decoded.claims.get("tenant")
        return CdsCaller(iss, jti, tenant if isinstance(tenant, str) else None)

    async def _once(self, iss: str, jti: str, exp: object) -> None:
        """Remember ``jti`` in the app's store until the JWT expires; a second use is refused."""
        if self._store is None:
            return
        key = f"cds-jti:{normalise_issuer(iss)}:{jti}"
        if await self._store.get(key) is not None:
            raise BearerError("This JWT was used before (jti replayed).")
        left = int(exp) - int(time.time()) if isinstance(exp, int | float) else 300
        await self._store.put(key, {"seen": True}, max(60, min(left + LEEWAY_SECONDS, 3600)))


def jku_allowed(jku: str, iss: str) -> bool:
    """``jku`` is on the issuer's origin, over https (or the issuer's scheme), without userinfo."""
    parts = urlsplit(jku)
    if parts.scheme not in ("https", urlsplit(iss).scheme) or parts.username or parts.password:
        return False
    return same_origin(jku, iss)


def cds_bearer_token(header: str) -> str:
    """The JWT of an ``Authorization`` header; BearerError when there is none."""
    scheme, _, token = header.partition(" ")
    if not header:
        raise BearerError("A CDS client must send its JWT as a bearer token.", missing=True)
    if scheme.lower() != "bearer" or not token.strip():
        raise BearerError("Only 'Authorization: Bearer <JWT>' is accepted.")
    return token.strip()
