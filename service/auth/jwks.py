"""Verify JWTs against a remote JWKS: cached, refetched once when a ``kid`` is unknown."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from service.errors import TokenError

__all__ = ["ASYMMETRIC_ALGS", "JwksCache"]

ASYMMETRIC_ALGS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384")
"""Never ``none`` or an HMAC: a public key must not double as a shared secret."""

_MIN_REFETCH_SECONDS = 30.0


class JwksCache:
    """One JWKS URL. ``decode`` verifies the signature only; claims are the caller's job."""

    def __init__(self, url: str, *, ttl_seconds: float = 3600, timeout: float = 10.0) -> None:
        self.url = url
        self._ttl = ttl_seconds
        self._timeout = timeout
        self._keys: KeySet | None = None
        self._expires = 0.0
        self._forced_at = -_MIN_REFETCH_SECONDS
        self._lock = asyncio.Lock()

    async def decode(self, token: str, algorithms: tuple[str, ...] = ASYMMETRIC_ALGS) -> jwt.Token:
        registry = JWSRegistry(algorithms=list(algorithms), strict_check_header=False)
        keys = await self._key_set(force=False)
        try:
            return jwt.decode(token, keys, registry=registry)
        except InvalidKeyIdError:
            # The issuer may have rotated its keys: fetch once more, then give up.
            keys = await self._key_set(force=True)
        except JoseError as err:
            raise TokenError(f"The token's signature does not verify ({err.error}).") from None
        try:
            return jwt.decode(token, keys, registry=registry)
        except JoseError as err:
            raise TokenError(f"The token's signature does not verify ({err.error}).") from None

    async def _key_set(self, *, force: bool) -> KeySet:
        async with self._lock:
            now = time.monotonic()
            fresh = self._keys is not None and now < self._expires
            # Forced refetches are rate limited so a stream of bogus kids cannot hammer the issuer.
            force = force and now - self._forced_at > _MIN_REFETCH_SECONDS
            if fresh and not force:
                assert self._keys is not None  # noqa: S101 - narrowed by ``fresh``
                return self._keys
            self._keys = await self._fetch()
            self._expires = now + self._ttl
            if force:
                self._forced_at = now
            return self._keys

    async def _fetch(self) -> KeySet:
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as http:
                resp = await http.get(self.url, headers={"Accept": "application/json"})
            resp.raise_for_status()
            body: Any = resp.json()
            return KeySet.import_key_set(body)
        except (httpx.HTTPError, ValueError, KeyError, TypeError, JoseError) as err:
            raise TokenError(f"Cannot load the signing keys from {self.url}.") from err
