"""The CDS client's JWT (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients).

A CDS client (the EHR) calls a CDS service with ``Authorization: Bearer <JWT>``.
:class:`CdsJwtVerifier` checks it (one per app, in the app's services;
``service.api.deps.VerifiedCdsClient`` is the dependency that calls it), in an order that costs
an attacker the most and us the least: the header and the claims as sent are checked first, and
a token that fails there makes no request anywhere; only then are the issuer's keys used, from
its configured JWK Set URL (``KETAMINE_CDS_JWKS_URLS``), never from a URL the token names.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from service.auth.api_tokens import LEEWAY_SECONDS, validate_claims
from service.auth.jwks import ASYMMETRIC_ALGS, JwksCache
from service.config import Settings
from service.errors import BearerError, TokenError
from service.state.base import SessionStore
from service.urls import normalise_issuer

__all__ = ["MAX_LIFETIME_SECONDS", "CdsCaller", "CdsJwtVerifier", "cds_bearer_token"]

MAX_LIFETIME_SECONDS = 300
"""``exp - iat`` at most: CDS Hooks asks clients for JWTs of five minutes or less."""
_MAX_JTI = 256


@dataclass(frozen=True, slots=True)
class CdsCaller:
    """A CDS client whose JWT passed every check."""

    issuer: str
    token_id: str
    tenant: str | None


class CdsJwtVerifier:
    """Checks ``Authorization: Bearer <JWT>`` from a CDS client.

    Before any key is fetched: ``alg`` asymmetric and ``kid`` named; ``iss`` one of
    ``KETAMINE_CDS_ALLOWED_ISSUERS``; a ``jku``, if sent, equal to that issuer's configured JWK Set
    URL; ``aud`` this endpoint's URL; ``exp``, ``iat`` and ``jti`` present, the token current and
    living five minutes at most; the ``jti`` not seen before. Then the signature, against the
    issuer's own key cache (one per configured issuer: bounded). A ``jti`` is remembered in the
    app's store (Redis when configured) until the token expires.
    """

    def __init__(self, settings: Settings, store: SessionStore | None, *,
                 clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], float] = time.time) -> None:
        """``clock`` paces the key caches' refetches; ``now`` is the epoch time claims are
        checked against."""
        allowed = {normalise_issuer(i) for i in settings.cds_allowed_issuers}
        self._urls = {normalise_issuer(i): url for i, url in settings.cds_jwks_urls.items()
                      if normalise_issuer(i) in allowed}
        self._keys = {iss: JwksCache(url, timeout=settings.fhir_timeout_seconds, clock=clock)
                      for iss, url in self._urls.items()}
        self._store = store
        self._now = now

    @property
    def fetches(self) -> int:
        """Key fetches sent so far, over every issuer."""
        return sum(cache.fetches for cache in self._keys.values())

    async def verify(self, token: str, audiences: list[str]) -> CdsCaller:
        header, claims = _unverified(token)
        if header.get("alg") not in ASYMMETRIC_ALGS or not isinstance(header.get("kid"), str):
            raise BearerError("The JWT must name its key (kid) and an asymmetric algorithm.")
        iss = claims.get("iss")
        if not isinstance(iss, str) or (issuer := normalise_issuer(iss)) not in self._keys:
            raise BearerError("The JWT's issuer is not an allowed CDS client.")
        if "jku" in header and header["jku"] != self._urls[issuer]:
            raise BearerError("The JWT's jku is not its issuer's configured JWK Set URL.")
        self._check_claims(claims, iss, audiences)
        jti = str(claims["jti"])
        if self._store is not None and await self._store.get(_jti_key(issuer, jti)) is not None:
            raise BearerError("This JWT was used before (jti replayed).")
        try:
            decoded = await self._keys[issuer].decode(token)
        except TokenError as err:
            raise BearerError(str(err)) from None
        await self._once(issuer, jti, decoded.claims["exp"])
        tenant = decoded.claims.get("tenant")
        return CdsCaller(issuer, jti, tenant if isinstance(tenant, str) else None)

    def _check_claims(self, claims: dict[str, Any], iss: str, audiences: list[str]) -> None:
        registry = JWTClaimsRegistry(
            now=lambda: int(self._now()),
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": iss},
            aud={"essential": True, "values": audiences},
            exp={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
        )
        validate_claims(registry, claims, subject="The JWT",
                        expired="The CDS client's JWT has expired.")
        exp, iat, jti = claims["exp"], claims["iat"], claims["jti"]
        if not _number(exp) or not _number(iat) or exp - iat > MAX_LIFETIME_SECONDS:
            raise BearerError("The JWT may live five minutes at most (exp - iat).")
        if not isinstance(jti, str) or not 0 < len(jti) <= _MAX_JTI:
            raise BearerError("The JWT's 'jti' claim is not acceptable.")

    async def _once(self, issuer: str, jti: str, exp: float) -> None:
        """Remember ``jti`` until the JWT expires (leeway included); a second use is refused."""
        if self._store is None:
            return
        ttl = max(1, math.ceil(exp - self._now()) + LEEWAY_SECONDS)
        if not await self._store.add(_jti_key(issuer, jti), {"seen": True}, ttl):
            raise BearerError("This JWT was used before (jti replayed).")


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims as sent (nothing is trusted yet)."""
    try:
        compact = jws.extract_compact(token.encode())
        header = compact.headers()
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError):
        raise BearerError("The CDS client's JWT is malformed.") from None
    if not isinstance(claims, dict):
        raise BearerError("The CDS client's JWT carries no claims.")
    return dict(header), claims


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _jti_key(issuer: str, jti: str) -> str:
    # Hashed: a jti is the client's string, of any content; the key stays short and plain.
    digest = hashlib.sha256(f"{issuer}\x00{jti}".encode()).hexdigest()
    return f"cds-jti:{digest}"


def cds_bearer_token(header: str) -> str:
    """The JWT of an ``Authorization`` header; BearerError when there is none."""
    scheme, _, token = header.partition(" ")
    if not header:
        raise BearerError("A CDS client must send its JWT as a bearer token.", missing=True)
    if scheme.lower() != "bearer" or not token.strip():
        raise BearerError("Only 'Authorization: Bearer <JWT>' is accepted.")
    return token.strip()
