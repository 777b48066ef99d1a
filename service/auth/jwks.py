"""Verify JWTs against one remote JWK Set (RFC 7517): cached, with a budget for refetches.

A :class:`JwksCache` holds the keys of one configured URL. It fetches them when it has none (or
they are older than ``ttl_seconds``). A ``kid`` it does not know makes it fetch again, at most
once per ``refetch_seconds`` (the refetch budget: the issuer may have rotated its keys, but a
stream of made-up kids must not become a stream of fetches). A failed fetch is remembered for
``failure_seconds`` (negative caching), so an issuer that is down is not asked again on every
call. :attr:`JwksCache.fetches` counts what went out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
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
_UNKNOWN_KEY = "The token's signature does not verify (its key is not in the issuer's key set)."


class JwksCache:
    """One JWKS URL. ``decode`` verifies the signature only; claims are the caller's job."""

    def __init__(self, url: str, *, ttl_seconds: float = 3600, timeout: float = 10.0,
                 refetch_seconds: float = 30.0, failure_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self._ttl = ttl_seconds
        self._timeout = timeout
        self._refetch = refetch_seconds
        self._failure = failure_seconds
        self._now = clock
        self._keys: KeySet | None = None
        self._expires = 0.0
        self._forced_at: float | None = None
        self._failed_until: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0
        """Requests sent to :attr:`url` (for measurements and tests)."""

    async def decode(self, token: str, algorithms: tuple[str, ...] = ASYMMETRIC_ALGS) -> jwt.Token:
        registry = JWSRegistry(algorithms=list(algorithms), strict_check_header=False)
        keys = await self._key_set(force=False)
        try:
            return jwt.decode(token, keys, registry=registry)
        except InvalidKeyIdError:
            # The issuer may have rotated its keys: fetch once more (budget allowing).
            refreshed = await self._key_set(force=True)
            if refreshed is keys:  # the budget is spent: the keys are the ones just tried
                raise TokenError(_UNKNOWN_KEY) from None
            keys = refreshed
        except JoseError as err:
            raise TokenError(f"The token's signature does not verify ({err.error}).") from None
        try:
            return jwt.decode(token, keys, registry=registry)
        except InvalidKeyIdError:
            raise TokenError(_UNKNOWN_KEY) from None
        except JoseError as err:
            raise TokenError(f"The token's signature does not verify ({err.error}).") from None

    async def _key_set(self, *, force: bool) -> KeySet:
        async with self._lock:
            now = self._now()
            if self._failed_until is not None and now < self._failed_until:
                raise TokenError(f"The signing keys at {self.url} could not be loaded lately.")
            fresh = self._keys is not None and now < self._expires
            spent = self._forced_at is not None and now - self._forced_at < self._refetch
            if self._keys is not None and fresh and (not force or spent):
                return self._keys
            if force:
                self._forced_at = now
            try:
                self._keys = await self._fetch()
            except TokenError:
                self._failed_until = now + self._failure
                raise
            self._failed_until = None
            self._expires = now + self._ttl
            return self._keys

    async def _fetch(self) -> KeySet:
        self.fetches += 1
        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as http:
                resp = await http.get(self.url, headers={"Accept": "application/json"})
            resp.raise_for_status()
            body: Any = resp.json()
            return KeySet.import_key_set(body)
        except (httpx.HTTPError, ValueError, KeyError, TypeError, JoseError) as err:
            raise TokenError(f"Cannot load the signing keys from {self.url}.") from err
