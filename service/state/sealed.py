"""State encrypted at rest: every value is sealed with Fernet before it reaches the store.

Launch state holds a PKCE verifier and a nonce, sessions hold the clinician's EHR access and
refresh tokens: whoever reads Redis (a backup, a replica, a debugging session) must find
ciphertext only. Fernet (https://github.com/fernet/spec, from ``cryptography``) is AES-128-CBC
with an HMAC-SHA256, so a value that was tampered with does not decrypt. ``MultiFernet`` takes
several keys: the first encrypts, any decrypts. Rotating is: put a new key first in
``KETAMINE_SESSION_KEYS``, keep the old one until ``KETAMINE_SESSION_TTL_SECONDS`` and
``KETAMINE_DRAFT_TTL_HOURS`` have both passed (everything sealed with it has expired by then: the
sessions and the session-form drafts), then remove it.
"""

from __future__ import annotations

import json
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from service.state.base import JsonObject, SessionStore

__all__ = ["SealedStore", "fernet_for"]

log = logging.getLogger(__name__)

_FIELD = "sealed"


def fernet_for(keys: list[str]) -> MultiFernet:
    """The keys as a MultiFernet; none given: a key made now (this process only)."""
    if not keys:
        # Production refuses to start without keys (service.config_report); elsewhere this is
        # the usual single-process case, so not a warning.
        log.info("KETAMINE_SESSION_KEYS is unset: session state is encrypted with a key made "
                    "at start-up, which other processes cannot read")
        keys = [Fernet.generate_key().decode()]
    return MultiFernet([Fernet(key) for key in keys])


class SealedStore:
    """A :class:`SessionStore` over another one; only ``{"sealed": <Fernet token>}`` reaches it."""

    def __init__(self, inner: SessionStore, fernet: MultiFernet) -> None:
        self.inner = inner
        self._fernet = fernet

    def _seal(self, value: JsonObject) -> JsonObject:
        return {_FIELD: self._fernet.encrypt(json.dumps(value).encode()).decode()}

    def _open(self, stored: JsonObject | None) -> JsonObject | None:
        if stored is None:
            return None
        sealed = stored.get(_FIELD)
        try:
            value = json.loads(self._fernet.decrypt(str(sealed).encode()))
        except (InvalidToken, ValueError):
            # Sealed with a key that was removed (or not sealed at all): as good as expired.
            log.warning("a stored value could not be decrypted; treated as absent")
            return None
        return value if isinstance(value, dict) else None

    async def put(self, key: str, value: JsonObject, ttl_seconds: int) -> None:
        await self.inner.put(key, self._seal(value), ttl_seconds)

    async def add(self, key: str, value: JsonObject, ttl_seconds: int) -> bool:
        return await self.inner.add(key, self._seal(value), ttl_seconds)

    async def get(self, key: str) -> JsonObject | None:
        return self._open(await self.inner.get(key))

    async def pop(self, key: str) -> JsonObject | None:
        return self._open(await self.inner.pop(key))

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()
