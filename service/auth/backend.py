"""SMART Backend Services: system-level FHIR access without a user.

https://hl7.org/fhir/smart-app-launch/backend-services.html: ``client_credentials`` with an
asymmetric client assertion (``private_key_jwt``; ``client_secret_jwt`` when only a secret is
configured), ``system/*.rs`` scopes, and the token reused until a minute before it expires.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Generator

import httpx
from authlib.integrations.base_client import OAuthError

from service.auth.client_auth import oauth_client
from service.auth.discovery import SmartDiscovery, check_issuer
from service.auth.scopes import backend_scopes
from service.config import Settings
from service.errors import TokenError
from service.metrics import token_outcome

__all__ = ["BackendServicesAuth"]

log = logging.getLogger(__name__)

RENEW_MARGIN_SECONDS = 60


class BackendServicesAuth(httpx.Auth):
    """An ``httpx.Auth`` for ``FhirClient(base_url=iss, auth=BackendServicesAuth(...))``."""

    def __init__(self, settings: Settings, token_endpoint: str, *, scope: str | None = None,
                 margin_seconds: float = RENEW_MARGIN_SECONDS) -> None:
        self._settings = settings
        self._token_endpoint = token_endpoint
        self._scope = scope or backend_scopes()
        self._margin = margin_seconds
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.fetch_count = 0
        """Tokens fetched so far (observability and tests)."""

    @classmethod
    async def for_issuer(cls, settings: Settings, iss: str, *, scope: str | None = None,
                         discovery: SmartDiscovery | None = None) -> BackendServicesAuth:
        """Discover the token endpoint of a trusted FHIR server (``KETAMINE_ALLOWED_ISSUERS``)."""
        iss = check_issuer(iss, settings.allowed_issuers)
        discovery = discovery or SmartDiscovery(timeout=settings.fhir_timeout_seconds)
        config = await discovery.get(iss)
        if scope is None:
            scope = backend_scopes(v2=config.supports_v2_scopes)
        return cls(settings, config.token_endpoint, scope=scope)

    async def access_token(self, *, force: bool = False) -> str:
        async with self._lock:
            if not force and self._token and time.time() < self._expires_at - self._margin:
                return self._token
            self._token, self._expires_at = await self._fetch()
            return self._token

    async def _fetch(self) -> tuple[str, float]:
        try:
            async with oauth_client(self._settings, self._token_endpoint, jwt_only=True,
                                    scope=self._scope) as client:
                token = await client.fetch_token(
                    self._token_endpoint, grant_type="client_credentials", scope=self._scope
                )
        except OAuthError as err:
            token_outcome("backend", "refused")
            raise TokenError(f"Backend services token refused ({err.error}).") from None
        except (httpx.HTTPError, ValueError) as err:
            token_outcome("backend", "failed")
            raise TokenError(f"Backend services token endpoint failed ({err}).") from None
        token_outcome("backend", "ok")
        self.fetch_count += 1
        expires_in = token.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 300.0
        log.info("backend services token obtained, expires in %.0f s", lifetime)
        return str(token["access_token"]), time.time() + lifetime

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("BackendServicesAuth works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {await self.access_token()}"
        response = yield request
        if response.status_code == 401:
            # Revoked or expired early: one fresh token, one retry.
            request.headers["Authorization"] = f"Bearer {await self.access_token(force=True)}"
            yield request
