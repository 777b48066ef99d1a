"""The SMART client's shared parts, built once per app: settings, store, discovery, JWKS caches."""

from __future__ import annotations

from service.auth.discovery import SmartDiscovery
from service.auth.jwks import JwksCache
from service.config import Settings
from service.state.base import SessionStore

__all__ = ["SmartApp"]


class SmartApp:
    def __init__(self, settings: Settings, store: SessionStore) -> None:
        self.settings = settings
        self.store = store
        self.discovery = SmartDiscovery(
            ttl_seconds=settings.discovery_ttl_seconds, timeout=settings.fhir_timeout_seconds
        )
        self._jwks: dict[str, JwksCache] = {}

    def jwks(self, url: str) -> JwksCache:
        """One cache per JWKS URL (URLs come from the discovery of a trusted issuer only)."""
        cache = self._jwks.get(url)
        if cache is None:
            cache = self._jwks[url] = JwksCache(url, timeout=self.settings.fhir_timeout_seconds)
        return cache
